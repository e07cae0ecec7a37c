"""A stateful fake of Alibaba Cloud's ID-verification APIs, speaking the real wire protocol."""
