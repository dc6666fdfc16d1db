from lrnnspec.profiles import load_profile_from_env

PROFILE = load_profile_from_env()


def pytest_report_header(config):
    return f"lrnnspec hypothesis profile: {PROFILE}"
