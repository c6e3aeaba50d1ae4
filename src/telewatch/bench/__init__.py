"""telewatch.bench"""
