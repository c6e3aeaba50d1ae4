"""telewatch.store"""
