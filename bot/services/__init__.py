"""Services: case numbers, export, broadcast, crypto: logic above storage, below handlers."""
