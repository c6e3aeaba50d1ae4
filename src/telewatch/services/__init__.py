"""telewatch.services"""
