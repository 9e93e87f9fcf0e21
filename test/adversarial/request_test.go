/*
Copyright 2026 The keyward Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package adversarial

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/test/e2e"
)

// through is a probe that sends r through an nginx front and expects
// status and reason.
func through(front func() *e2e.Nginx, r func() request, status int, reason string) func(t *testing.T) {
	return func(t *testing.T) { expect(t, s.send(t, front(), r()), status, reason) }
}

// The fronts (s is set once keyward dev runs).
var (
	front      = func() *e2e.Nginx { return s.front }
	hostFront  = func() *e2e.Nginx { return s.hostFront }
	plainFront = func() *e2e.Nginx { return s.plainFront }
)

// original is what ingress-nginx states of GET <path> on host.
func original(path string) map[string][]string {
	return map[string][]string{"X-Original-Url": {"http://" + host + path}, "X-Original-Method": {"GET"}}
}

func merge(ms ...map[string][]string) map[string][]string {
	out := map[string][]string{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = append(out[k], v...)
		}
	}
	return out
}

// wrongChecksum changes the last checksum character of a key.
func wrongChecksum(key string) string {
	last := key[len(key)-1]
	c := byte('0')
	if last == '0' {
		c = '1'
	}
	return key[:len(key)-1] + string(c)
}

func requestProbes() []probe {
	read := func() string { return s.key(ns, "read") }
	root := func() string { return s.key(ns, "root") }
	withHost := func(h string) func() request {
		return func() request { r := get("/admin/x", bearer(root())); r.host = h; return r }
	}
	return []probe{
		// authority: the key "root" may GET "/" only; a Host that ends the
		// authority early would make every path judge as "/".
		{"authority", "Host api.example.com:? judges /", through(hostFront, withHost(host+":?"), http.StatusForbidden, "path")},
		{"authority", "Host ending in ?", through(hostFront, withHost(host+"?"), http.StatusForbidden, "path")},
		{"authority", "Host ending in #", through(hostFront, withHost(host+"#"), http.StatusForbidden, "path")},
		{"authority", "Host with a backslash", through(hostFront, withHost(host+`\`), http.StatusForbidden, "path")},
		{"authority", "absolute X-Original-URL without a path (direct)", func(t *testing.T) {
			// Only a forged header lacks the path nginx's $request_uri
			// always has; "http://host?x" must not judge as "/".
			expect(t, s.direct(t, map[string][]string{
				"X-Original-Url": {"http://" + host + "?/admin/x"}, "X-Original-Method": {"GET"},
				"Authorization": {"Bearer " + root()},
			}), http.StatusForbidden, "path")
		}},

		// ambiguity: statements of the request the client adds, which
		// ingress-nginx passes on.
		{"ambiguity", "client X-Forwarded-Uri disagrees", through(front, func() request {
			return get("/public/a", bearer(read()), "X-Forwarded-Uri: /admin/x")
		}, http.StatusForbidden, "path")},
		{"ambiguity", "client X-Original-URI disagrees", through(front, func() request {
			return get("/public/a", bearer(read()), "X-Original-URI: /admin/x")
		}, http.StatusForbidden, "path")},
		{"ambiguity", "client X-Forwarded-Method disagrees", through(front, func() request {
			return get("/public/a", bearer(read()), "X-Forwarded-Method: DELETE")
		}, http.StatusForbidden, "path")},
		{"ambiguity", "X-HTTP-Method-Override names another method", through(front, func() request {
			return get("/public/a", bearer(read()), "X-HTTP-Method-Override: DELETE")
		}, http.StatusForbidden, "path")},
		{"ambiguity", "X-HTTP-Method names another method", through(front, func() request {
			return get("/public/a", bearer(read()), "X-HTTP-Method: DELETE")
		}, http.StatusForbidden, "path")},
		{"ambiguity", "X-Method-Override names another method", through(front, func() request {
			return get("/public/a", bearer(read()), "X-Method-Override: DELETE")
		}, http.StatusForbidden, "path")},
		{"ambiguity", "client X-Original-URL beside a proxy's X-Original-URI (plain auth_request, direct)", func(t *testing.T) {
			// What a plain nginx auth_request sends: its X-Original-URI and
			// X-Original-Method, and the client's headers passed on.
			expect(t, s.direct(t, map[string][]string{
				"X-Original-Uri": {"/admin/x"}, "X-Original-Method": {"GET"},
				"X-Original-Url": {"http://" + host + "/public/a"},
				"Authorization":  {"Bearer " + read()},
			}), http.StatusForbidden, "path")
		}},

		{"ambiguity", "client X-Original-URL beats the proxy's X-Original-URI (plain auth_request)", through(plainFront, func() request {
			return get("/admin/x", bearer(read()), "X-Original-URL: http://"+host+"/public/a")
		}, http.StatusForbidden, "path")},
		{"ambiguity", "client X-Forwarded-Uri beside the proxy's X-Original-URI (plain auth_request)", through(plainFront, func() request {
			return get("/admin/x", bearer(read()), "X-Forwarded-Uri: /public/a")
		}, http.StatusForbidden, "path")},
		{"ambiguity", "X-HTTP-Method-Override through plain auth_request", through(plainFront, func() request {
			return get("/public/a", bearer(read()), "X-HTTP-Method-Override: DELETE")
		}, http.StatusForbidden, "path")},

		// path: what cannot be normalised safely is refused; what can is
		// normalised as the upstream will see it.
		{"path", "double-encoded dot segments", through(front, func() request {
			return get("/public/%252e%252e/admin/x", bearer(read()))
		}, http.StatusForbidden, "path")},
		{"path", "encoded slash", through(front, func() request {
			return get("/public/..%2Fadmin/x", bearer(read()))
		}, http.StatusForbidden, "path")},
		{"path", "encoded slash in lower-case hex", through(front, func() request {
			return get("/public/..%2fadmin/x", bearer(read()))
		}, http.StatusForbidden, "path")},
		{"path", "encoded backslash", through(front, func() request {
			return get("/public/..%5cadmin/x", bearer(read()))
		}, http.StatusForbidden, "path")},
		{"path", "encoded semicolon", through(front, func() request {
			return get("/public/..%3b/admin/x", bearer(read()))
		}, http.StatusForbidden, "path")},
		{"path", "backslash", through(front, func() request {
			return get(`/public/..\admin/x`, bearer(read()))
		}, http.StatusForbidden, "path")},
		{"path", "encoded NUL (direct: nginx refuses it itself)", func(t *testing.T) {
			expect(t, s.direct(t, merge(original("/public/%00/../../admin/x"), map[string][]string{
				"Authorization": {"Bearer " + read()},
			})), http.StatusForbidden, "path")
		}},
		{"path", "semicolon path parameter", through(front, func() request {
			return get("/public/..;/admin/x", bearer(read()))
		}, http.StatusForbidden, "path")},
		{"path", "over-long path (direct)", func(t *testing.T) {
			expect(t, s.direct(t, merge(original("/public/"+strings.Repeat("a", 9000)), map[string][]string{
				"Authorization": {"Bearer " + read()},
			})), http.StatusForbidden, "path")
		}},
		{"path", "overlong UTF-8 dot segments", through(front, func() request {
			return get("/public/%c0%ae%c0%ae/admin/x", bearer(read()))
		}, http.StatusForbidden, "path")},
		{"path", "encoded slash in the Envoy dialect (direct)", func(t *testing.T) {
			expect(t, s.directURL(t, "/v1/envoy/"+ns+"/api/public/..%2Fadmin/x", map[string][]string{
				"Authorization": {"Bearer " + read()},
			}), http.StatusForbidden, "path")
		}},
		{"path", "dot segments in the Envoy dialect (direct)", func(t *testing.T) {
			expect(t, s.directURL(t, "/v1/envoy/"+ns+"/api/public/../admin/x", map[string][]string{
				"Authorization": {"Bearer " + read()},
			}), http.StatusForbidden, "scope")
		}},
		{"path", "dot segments leave the scope's prefix", through(front, func() request {
			return get("/public/../admin/x", bearer(read()))
		}, http.StatusForbidden, "scope")},
		{"path", "percent-encoded dot segments are refused, leaving the scope's prefix", through(front, func() request {
			return get("/public/%2e%2e/admin/x", bearer(read()))
		}, http.StatusForbidden, "path")},
		{"path", "percent-encoded dot segments are refused, entering the scope's prefix (an upstream routing on the raw path serves /admin)", through(front, func() request {
			return get("/admin/%2e%2e/public/x", bearer(read()))
		}, http.StatusForbidden, "path")},
		{"path", "double slash before a dot segment", through(front, func() request {
			return get("/public//../admin/x", bearer(read()))
		}, http.StatusForbidden, "scope")},

		{"authority", "HTTP/1.0 request without a Host", through(hostFront, func() request {
			r := get("/admin/x", bearer(root()))
			r.host, r.http10 = "", true
			return r
		}, http.StatusForbidden, "scope")},
		{"authority", "absolute-form request target naming another host", through(hostFront, func() request {
			return get("http://evil.example/admin/x", bearer(root()))
		}, http.StatusForbidden, "scope")},

		// credential
		{"credential", "two Authorization headers (direct: nginx refuses them itself)", func(t *testing.T) {
			expect(t, s.direct(t, merge(original("/public/a"), map[string][]string{
				"Authorization": {"Bearer " + read(), "Bearer " + root()},
			})), http.StatusUnauthorized, "malformed")
		}},
		{"credential", "Bearer and rest_api_key= with different keys (direct)", func(t *testing.T) {
			expect(t, s.direct(t, merge(original("/public/a"), map[string][]string{
				"Authorization": {"rest_api_key=" + root(), "Bearer " + read()},
			})), http.StatusUnauthorized, "malformed")
		}},
		{"credential", "Authorization and X-API-Key with different keys", through(front, func() request {
			return get("/public/a", bearer(read()), "X-API-Key: "+root())
		}, http.StatusUnauthorized, "malformed")},
		{"credential", "two X-API-Key headers", through(front, func() request {
			return get("/public/a", "X-API-Key: "+read(), "X-API-Key: "+root())
		}, http.StatusUnauthorized, "malformed")},
		{"credential", "key in the query string", through(front, func() request {
			k := read()
			return get("/public/a?api_key=" + k + "&apikey=" + k + "&access_token=" + k + "&key=" + k)
		}, http.StatusUnauthorized, "missing")},
		{"credential", "key with a wrong checksum", through(front, func() request {
			return get("/public/a", bearer(wrongChecksum(read())))
		}, http.StatusUnauthorized, "malformed")},

		// state
		{"state", "revoked key", func(t *testing.T) {
			eventually401(t, 10*time.Second, func() answer { return s.send(t, s.front, get("/public/a", bearer(s.key(ns, "revoked")))) }, "revoked")
		}},
		{"state", "disabled key", func(t *testing.T) {
			eventually401(t, 10*time.Second, func() answer { return s.send(t, s.front, get("/public/a", bearer(s.key(ns, "disabled")))) }, "disabled")
		}},
		{"state", "expired key", func(t *testing.T) {
			// It expires 25s after the fixtures began.
			eventually401(t, time.Minute, func() answer { return s.send(t, s.front, get("/public/a", bearer(s.key(ns, "expiring")))) }, "expired")
		}},
		{"state", "key of a revoked Application", func(t *testing.T) {
			eventually401(t, 10*time.Second, func() answer { return s.send(t, s.front, get("/public/a", bearer(s.key(ns, "gone-k")))) }, "revoked")
		}},

		// tenant
		{"tenant", "key of another group on this group's URL", through(front, func() request {
			return get("/public/a", bearer(s.key(ns, "oth-k")))
		}, http.StatusUnauthorized, "unknown")},
		{"tenant", "key of a group of the same name in another namespace", through(front, func() request {
			return get("/public/a", bearer(s.key(nsX, "x-read")))
		}, http.StatusUnauthorized, "unknown")},
		{"tenant", "key of group api on group other's URL", func(t *testing.T) {
			expect(t, s.send(t, s.otherFront, get("/public/a", bearer(read()))), http.StatusUnauthorized, "unknown")
		}},

		// source: the key "ranged" works only from 203.0.113.0/24; keyward
		// dev trusts no proxy.
		{"source", "X-Real-IP from an untrusted peer (direct)", func(t *testing.T) {
			expect(t, s.direct(t, merge(original("/public/a"), map[string][]string{
				"Authorization": {"Bearer " + s.key(ns, "ranged")}, "X-Real-Ip": {"203.0.113.7"},
			})), http.StatusForbidden, "source")
		}},
		{"source", "X-Forwarded-For from an untrusted peer (direct)", func(t *testing.T) {
			expect(t, s.direct(t, merge(original("/public/a"), map[string][]string{
				"Authorization": {"Bearer " + s.key(ns, "ranged")}, "X-Forwarded-For": {"203.0.113.7"},
			})), http.StatusForbidden, "source")
		}},
		{"source", "X-Real-IP and X-Forwarded-For from the client through nginx", through(front, func() request {
			return get("/public/a", bearer(s.key(ns, "ranged")), "X-Real-IP: 203.0.113.7", "X-Forwarded-For: 203.0.113.7")
		}, http.StatusForbidden, "source")},

		// scope
		{"scope", "method the scope does not grant", through(front, func() request {
			r := get("/public/a", bearer(read()), "Content-Length: 0")
			r.method = "POST"
			return r
		}, http.StatusForbidden, "scope")},
		{"scope", "prefix without a segment boundary", through(front, func() request {
			return get("/publicity/x", bearer(read()))
		}, http.StatusForbidden, "scope")},
		{"scope", "exact path rule used for a longer path", through(front, func() request {
			return get("/admin/x", bearer(root()))
		}, http.StatusForbidden, "scope")},

		// response-headers
		{"response-headers", "client-sent X-Auth-* headers reach the backend", func(t *testing.T) {
			a := s.send(t, s.front, get("/public/a", bearer(read()),
				"X-Auth-Application: victim", "X-Auth-Scopes: admin", "X-Auth-Namespace: victims",
				"X-Auth-External-ID: VICTIM-1", "X-Auth-Key: adv_forged"))
			want := map[string]string{"X-Auth-Application": "app", "X-Auth-Scopes": "read", "X-Auth-Namespace": ns, "X-Auth-External-Id": "EXT-APP-1"}
			backendSees(t, a, want)
		}},
		{"response-headers", "X-Auth-External-ID sent for an Application without one", func(t *testing.T) {
			a := s.send(t, s.otherFront, get("/public/a", bearer(s.key(ns, "oth-k")), "X-Auth-External-ID: VICTIM-1"))
			backendSees(t, a, map[string]string{"X-Auth-Application": "oth-a", "X-Auth-External-Id": ""})
		}},
	}
}

// backendSees asserts that the request reached the backend with these
// headers (an empty value: absent).
func backendSees(t *testing.T, a answer, want map[string]string) {
	t.Helper()
	if a.status != http.StatusOK {
		t.Fatalf("got %s, want 200 from the backend", a)
	}
	got, err := e2e.DecodeEcho(strings.NewReader(a.body))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range sortedKeys(want) {
		if v := strings.Join(got.Headers.Values(name), ", "); v != want[name] {
			t.Errorf("the backend received %s: %q, want %q (the verifier's)", name, v, want[name])
		}
	}
}
