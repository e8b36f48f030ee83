pytest_plugins = ["etcd3.testing"]
