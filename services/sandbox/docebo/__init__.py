"""sandbox/docebo"""
