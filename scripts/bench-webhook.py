#!/usr/bin/env python3
# How fast Slipway answers Stripe webhooks, against /healthz in the same run (machines here
# are shared and noisy: read the ratio). Point it at a running `slipway serve` configured with
# a Stripe key and the webhook secret given here; it posts N signed events of a type Slipway
# ignores (so no Stripe call is made) and prints medians and p95s.
#   scripts/bench-webhook.py http://127.0.0.1:3000 whsec_... 500
import hashlib, hmac, json, sys, time, urllib.request, statistics, uuid
base, secret, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
def post(body, sig):
    req = urllib.request.Request(base + "/api/webhooks/stripe", data=body, method="POST",
        headers={"content-type": "application/json", "stripe-signature": sig})
    t = time.perf_counter(); r = urllib.request.urlopen(req); r.read(); return time.perf_counter() - t, r.status
def get(path):
    t = time.perf_counter(); r = urllib.request.urlopen(base + path); r.read(); return time.perf_counter() - t
hz, wh = [], []
for i in range(n):
    hz.append(get("/healthz"))
    body = json.dumps({"id": "evt_" + uuid.uuid4().hex, "object": "event", "type": "customer.tax_id.created",
        "created": int(time.time()), "data": {"object": {"id": "txi_1", "object": "tax_id"}}}).encode()
    ts = int(time.time())
    sig = "t=%d,v1=%s" % (ts, hmac.new(secret.encode(), b"%d." % ts + body, hashlib.sha256).hexdigest())
    d, status = post(body, sig); assert status == 200; wh.append(d)
q = lambda xs, p: sorted(xs)[int(p * (len(xs) - 1))] * 1000
print(f"n={n} healthz median {q(hz,.5):.2f} ms p95 {q(hz,.95):.2f} ms | webhook median {q(wh,.5):.2f} ms p95 {q(wh,.95):.2f} ms | ratio {q(wh,.5)/q(hz,.5):.2f}x")
