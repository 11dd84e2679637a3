"""tweepy_loop.py - tweepy's Client.get_user N times against a local TLS server.
   python3 tweepy_loop.py BASE_URL N    (REQUESTS_CA_BUNDLE trusts the server)
Prints calls/s and peak RSS in MB.  tweepy only speaks to api.twitter.com, so
a transport adapter rewrites the host to BASE_URL (nothing leaves 127.0.0.1)."""
import resource
import sys
import time

import requests
import tweepy

base, n = sys.argv[1], int(sys.argv[2])


class Local(requests.adapters.HTTPAdapter):
    def send(self, request, **kw):
        request.url = request.url.replace("https://api.twitter.com", base)
        return super().send(request, **kw)


client = tweepy.Client(bearer_token="bench-token")
client.session.mount("https://", Local())
assert client.get_user(id="2244994945").data.username == "XDevelopers"
t = time.monotonic()
for _ in range(n):
    client.get_user(id="2244994945")
rate = n / (time.monotonic() - t)
print("%.1f %.1f" % (rate, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))
