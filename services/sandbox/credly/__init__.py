"""sandbox/credly"""
