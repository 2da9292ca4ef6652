"""The write side: every upload path ends in ``publish.publish_file``, the one way to visibility."""
