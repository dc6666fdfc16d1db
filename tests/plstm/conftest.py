import torch

# the PyTorch forms run on tiny shapes here: one intra-op thread per xdist worker avoids oversubscription
torch.set_num_threads(1)
