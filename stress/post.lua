-- wrk script: POST a 1 KiB body (Content-Length) to the URL's path; the echo plugin sends it back.
wrk.method = "POST"
wrk.body = string.rep("x", 1024)
wrk.headers["Content-Type"] = "application/octet-stream"
