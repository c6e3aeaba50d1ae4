"""telewatch.postrules"""
