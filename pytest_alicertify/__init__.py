"""pytest plugin: fixtures that simulate Alibaba Cloud ID verification end to end."""
