"""telewatch.web"""
