"""telewatch.api"""
