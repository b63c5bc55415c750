"""What every function and command needs: errors that name the bad input, structured logs, one storage interface
over local paths and s3://, JSON Lines files, reproducible zips and the Lambda's validated settings."""
