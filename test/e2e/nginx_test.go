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

package e2e

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// stubAuth is a stand-in verifier: 200 with X-Auth-Application: stub for
// "Authorization: Bearer good" or "X-API-Key: good"; 403 (X-Auth-Reason:
// scope) for "Bearer forbidden"; 500 for "Bearer broken"; otherwise 401 with
// WWW-Authenticate: Bearer realm="x" and X-Auth-Reason: missing. Denials carry
// a JSON body, like the verifier's. It records every request and counts the
// connections it accepted.
type stubAuth struct {
	*httptest.Server
	conns atomic.Int64

	mu   sync.Mutex
	reqs []stubRequest
}

type stubRequest struct {
	Method, Path, Host string
	Header             http.Header
	ContentLength      int64
	Body               string
}

func newStubAuth(t *testing.T) *stubAuth {
	s := &stubAuth{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.reqs = append(s.reqs, stubRequest{
			Method: r.Method, Path: r.URL.Path, Host: r.Host,
			Header: r.Header.Clone(), ContentLength: r.ContentLength, Body: string(body),
		})
		s.mu.Unlock()

		deny := func(status int, reason string) {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("X-Auth-Reason", reason)
			w.WriteHeader(status)
			_, _ = io.WriteString(w, `{"reason":"`+reason+`","message":"denied by the stub"}`)
		}
		switch auth := r.Header.Get("Authorization"); {
		case auth == "Bearer good" || r.Header.Get("X-API-Key") == "good":
			w.Header().Set("X-Auth-Application", "stub")
			w.Header().Set("X-Auth-Scopes", "read write")
			w.WriteHeader(http.StatusOK) // no body: Content-Length: 0
		case auth == "Bearer forbidden":
			deny(http.StatusForbidden, "scope")
		case auth == "Bearer broken":
			deny(http.StatusInternalServerError, "broken")
		default:
			w.Header().Set("WWW-Authenticate", `Bearer realm="x"`)
			deny(http.StatusUnauthorized, "missing")
		}
	}))
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.conns.Add(1)
		}
	}
	srv.Start()
	s.Server = srv
	t.Cleanup(srv.Close)
	return s
}

func (s *stubAuth) requests() []stubRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]stubRequest(nil), s.reqs...)
}

// only returns the only request the stub received since the last call.
func (s *stubAuth) only(t *testing.T) stubRequest {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.reqs) != 1 {
		t.Fatalf("the auth stub received %d requests, want 1", len(s.reqs))
	}
	r := s.reqs[0]
	s.reqs = nil
	return r
}

const verifyPath = "/v1/verify/ns/group"

// setup starts a stub verifier, an echo upstream and nginx in front.
func setup(t *testing.T, opts NginxOptions) (*Nginx, *stubAuth) {
	t.Helper()
	stub := newStubAuth(t)
	if opts.AuthURL == "" && !opts.AuthReturn200 {
		opts.AuthURL = stub.URL + verifyPath
	}
	if opts.Upstream == "" {
		opts.Upstream = Echo(t).URL
	}
	return StartNginx(t, opts), stub
}

var headers = []string{"X-Auth-Application", "X-Auth-Key", "X-Auth-Scopes", "X-Auth-Namespace", "X-Auth-External-ID"}

// do sends a request through nginx (one connection per request) and returns
// the response with its body read.
func do(t *testing.T, method, url, body string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func echoed(t *testing.T, resp *http.Response, body string) Echoed {
	t.Helper()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %s, want 200 from the upstream; body: %s", resp.Status, body)
	}
	e, err := DecodeEcho(strings.NewReader(body))
	if err != nil {
		t.Fatalf("not an echo answer (%v): %s", err, body)
	}
	return e
}

func wantHeader(t *testing.T, who string, h http.Header, name, want string) {
	t.Helper()
	if got := h.Values(name); len(got) != 1 || got[0] != want {
		t.Errorf("%s: %s = %q, want [%q]", who, name, got, want)
	}
}

func wantNoHeader(t *testing.T, who string, h http.Header, name string) {
	t.Helper()
	if got, ok := h[http.CanonicalHeaderKey(name)]; ok {
		t.Errorf("%s: %s = %q, want none", who, name, got)
	}
}

func TestAuthLocationName(t *testing.T) {
	// ingress-nginx's buildAuthLocation for path "/" and pathType Prefix.
	if got, want := authLocation("/", "Prefix"), "/_external-auth-Lw-Prefix"; got != want {
		t.Errorf("authLocation = %q, want %q", got, want)
	}
}

// (a) and (b): an allowed GET reaches the upstream with the verifier's
// headers; the verifier sees the original URL, method and client address.
func TestNginxAllowedGet(t *testing.T) {
	t.Parallel()
	n, stub := setup(t, NginxOptions{ResponseHeaders: headers})

	const uri = "/api/items?x=1&y=a%2Fb"
	resp, body := do(t, http.MethodGet, n.URL+uri, "", map[string]string{
		"Authorization": "Bearer good",
		// Spoofing attempts: nginx must overwrite or drop all of these.
		"X-Auth-Application": "evil",
		"X-Auth-Key":         "spoofed",
		"X-Original-URL":     "http://evil.example/",
		"X-Original-Method":  "DELETE",
		"X-Real-IP":          "203.0.113.9",
	})
	e := echoed(t, resp, body)

	if e.Method != http.MethodGet || e.URI != uri {
		t.Errorf("upstream got %s %s, want GET %s", e.Method, e.URI, uri)
	}
	wantHeader(t, "upstream", e.Headers, "X-Auth-Application", "stub")
	wantHeader(t, "upstream", e.Headers, "X-Auth-Scopes", "read write")
	// Listed in auth-response-headers but not sent by the verifier: removed.
	wantNoHeader(t, "upstream", e.Headers, "X-Auth-Key")
	wantNoHeader(t, "upstream", e.Headers, "X-Auth-Namespace")
	wantHeader(t, "upstream", e.Headers, "X-Real-IP", "127.0.0.1")
	wantHeader(t, "upstream", e.Headers, "Authorization", "Bearer good")

	r := stub.only(t)
	if r.Method != http.MethodGet || r.Path != verifyPath {
		t.Errorf("verifier got %s %s, want GET %s", r.Method, r.Path, verifyPath)
	}
	if r.Host != "127.0.0.1" {
		t.Errorf("verifier got Host %q, want the auth URL's host name 127.0.0.1", r.Host)
	}
	wantHeader(t, "verifier", r.Header, "X-Original-URL", n.URL+uri)
	wantHeader(t, "verifier", r.Header, "X-Original-Method", "GET")
	wantHeader(t, "verifier", r.Header, "X-Sent-From", "nginx-ingress-controller")
	wantHeader(t, "verifier", r.Header, "X-Real-IP", "127.0.0.1")
	wantHeader(t, "verifier", r.Header, "X-Forwarded-For", "127.0.0.1")
	wantHeader(t, "verifier", r.Header, "X-Auth-Request-Redirect", uri)
	wantHeader(t, "verifier", r.Header, "Authorization", "Bearer good")
	// Only with the auth-method annotation.
	wantNoHeader(t, "verifier", r.Header, "X-Original-URI")
	if v := r.Header.Get("X-Request-ID"); len(v) != 32 {
		t.Errorf("verifier got X-Request-ID %q, want nginx's 32 hex digits", v)
	}
}

// (b): a POST with a body is checked with a bodiless GET subrequest carrying
// X-Original-Method: POST; the body still reaches the upstream.
func TestNginxAllowedPostHasNoBodyAtVerifier(t *testing.T) {
	t.Parallel()
	n, stub := setup(t, NginxOptions{ResponseHeaders: headers})

	const uri = "/api/items?draft=true"
	resp, body := do(t, http.MethodPost, n.URL+uri, `{"name":"secret body"}`, map[string]string{
		"Authorization": "Bearer good",
		"Content-Type":  "application/json",
	})
	e := echoed(t, resp, body)
	if e.Method != http.MethodPost || e.Body != `{"name":"secret body"}` {
		t.Errorf("upstream got %s with body %q, want the POST and its body", e.Method, e.Body)
	}
	wantHeader(t, "upstream", e.Headers, "X-Auth-Application", "stub")

	r := stub.only(t)
	if r.Method != http.MethodGet {
		t.Errorf("verifier got method %s, want GET", r.Method)
	}
	wantHeader(t, "verifier", r.Header, "X-Original-Method", "POST")
	wantHeader(t, "verifier", r.Header, "X-Original-URL", n.URL+uri)
	wantHeader(t, "verifier", r.Header, "X-Real-IP", "127.0.0.1")
	if cl := r.Header.Get("Content-Length"); r.ContentLength != 0 || (cl != "" && cl != "0") || r.Body != "" {
		t.Errorf("verifier got a body: Content-Length %q (%d), body %q", cl, r.ContentLength, r.Body)
	}
	wantNoHeader(t, "verifier", r.Header, "Transfer-Encoding")
}

func TestNginxAPIKeyHeaderReachesVerifier(t *testing.T) {
	t.Parallel()
	n, stub := setup(t, NginxOptions{ResponseHeaders: headers})
	resp, body := do(t, http.MethodGet, n.URL+"/x", "", map[string]string{"X-API-Key": "good"})
	e := echoed(t, resp, body)
	wantHeader(t, "upstream", e.Headers, "X-Auth-Application", "stub")
	wantHeader(t, "verifier", stub.only(t).Header, "X-Api-Key", "good")
}

// (c): the verifier's 401 reaches the client with its WWW-Authenticate; by
// default (as in ingress-nginx) not its X-Auth-Reason nor its body.
func TestNginxUnauthorized(t *testing.T) {
	t.Parallel()
	n, stub := setup(t, NginxOptions{ResponseHeaders: headers})
	resp, body := do(t, http.MethodGet, n.URL+"/api/items", "", map[string]string{"Authorization": "Bearer bad"})
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("status %s, want 401; body: %s", resp.Status, body)
	}
	wantHeader(t, "client", resp.Header, "WWW-Authenticate", `Bearer realm="x"`)
	wantNoHeader(t, "client", resp.Header, "X-Auth-Reason")
	if strings.Contains(body, "denied by the stub") {
		t.Errorf("client got the verifier's body; auth_request does not pass it: %s", body)
	}
	stub.only(t)
}

// (d): the verifier's 403 reaches the client as 403.
func TestNginxForbidden(t *testing.T) {
	t.Parallel()
	n, stub := setup(t, NginxOptions{ResponseHeaders: headers})
	resp, body := do(t, http.MethodDelete, n.URL+"/api/items/1", "", map[string]string{"Authorization": "Bearer forbidden"})
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("status %s, want 403; body: %s", resp.Status, body)
	}
	wantNoHeader(t, "client", resp.Header, "WWW-Authenticate")
	wantNoHeader(t, "client", resp.Header, "X-Auth-Reason")
	wantHeader(t, "verifier", stub.only(t).Header, "X-Original-Method", "DELETE")
}

// Any other status from the verifier is a 500 for the client.
func TestNginxVerifierErrorIs500(t *testing.T) {
	t.Parallel()
	n, _ := setup(t, NginxOptions{ResponseHeaders: headers})
	resp, body := do(t, http.MethodGet, n.URL+"/", "", map[string]string{"Authorization": "Bearer broken"})
	if resp.StatusCode != http.StatusInternalServerError {
		t.Fatalf("status %s, want 500; body: %s", resp.Status, body)
	}
}

func TestNginxExposeAuthReason(t *testing.T) {
	t.Parallel()
	n, _ := setup(t, NginxOptions{ResponseHeaders: headers, ExposeAuthReason: true})
	for _, c := range []struct {
		auth   string
		status int
		reason string
	}{
		{"", http.StatusUnauthorized, "missing"},
		{"Bearer forbidden", http.StatusForbidden, "scope"},
	} {
		resp, body := do(t, http.MethodGet, n.URL+"/", "", map[string]string{"Authorization": c.auth})
		if resp.StatusCode != c.status {
			t.Fatalf("%q: status %s, want %d; body: %s", c.auth, resp.Status, c.status, body)
		}
		wantHeader(t, "client", resp.Header, "X-Auth-Reason", c.reason)
	}
	resp, body := do(t, http.MethodGet, n.URL+"/", "", map[string]string{"Authorization": "Bearer good"})
	echoed(t, resp, body)
	wantNoHeader(t, "client", resp.Header, "X-Auth-Reason")
}

// (e): with AuthReturn200 every request passes and no verifier is asked.
func TestNginxAuthReturn200(t *testing.T) {
	t.Parallel()
	n, stub := setup(t, NginxOptions{AuthReturn200: true, ResponseHeaders: headers})
	for _, m := range []string{http.MethodGet, http.MethodPost} {
		resp, body := do(t, m, n.URL+"/any/path?q=1", "payload", nil)
		e := echoed(t, resp, body)
		if e.Method != m || e.URI != "/any/path?q=1" {
			t.Errorf("upstream got %s %s, want %s /any/path?q=1", e.Method, e.URI, m)
		}
		wantNoHeader(t, "upstream", e.Headers, "X-Auth-Application")
	}
	if got := len(stub.requests()); got != 0 {
		t.Errorf("the auth stub received %d requests, want 0", got)
	}
}

func TestNginxAuthMethod(t *testing.T) {
	t.Parallel()
	n, stub := setup(t, NginxOptions{ResponseHeaders: headers, AuthMethod: http.MethodGet})
	const uri = "/p?a=1"
	resp, body := do(t, http.MethodPut, n.URL+uri, "x", map[string]string{"Authorization": "Bearer good"})
	echoed(t, resp, body)
	r := stub.only(t)
	if r.Method != http.MethodGet {
		t.Errorf("verifier got method %s, want GET", r.Method)
	}
	wantHeader(t, "verifier", r.Header, "X-Original-URI", uri)
	wantHeader(t, "verifier", r.Header, "X-Scheme", "http")
	wantHeader(t, "verifier", r.Header, "X-Original-Method", "PUT")
}

// Connections nginx opens to the verifier: one per subrequest by default
// (proxy_http_version 1.1 without keepalive sends Connection: close); with
// auth-keepalive, one for all answers without a body, but auth_request does
// not read a body, so an answer with one (the verifier's denials) costs its
// connection.
func TestNginxAuthConnections(t *testing.T) {
	t.Parallel()
	const requests = 10
	for _, c := range []struct {
		name      string
		keepalive int
		auth      string
		conns     int64
	}{
		{"default allowed", 0, "Bearer good", requests},
		{"keepalive allowed", 8, "Bearer good", 1},
		{"keepalive denied with a body", 8, "Bearer bad", requests},
	} {
		t.Run(c.name, func(t *testing.T) {
			n, stub := setup(t, NginxOptions{ResponseHeaders: headers, AuthKeepalive: c.keepalive})
			for range requests {
				do(t, http.MethodGet, n.URL+"/", "", map[string]string{"Authorization": c.auth})
			}
			if got := stub.conns.Load(); got != c.conns {
				t.Errorf("%d connections to the verifier for %d requests, want %d", got, requests, c.conns)
			}
		})
	}
}

func TestNginxWorkersAndStop(t *testing.T) {
	t.Parallel()
	n, _ := setup(t, NginxOptions{ResponseHeaders: headers, WorkerProcesses: 2})
	for range 4 {
		resp, body := do(t, http.MethodGet, n.URL+"/w", "", map[string]string{"Authorization": "Bearer good"})
		echoed(t, resp, body)
	}
	if !strings.Contains(n.AccessLog(), `"GET /w HTTP/1.1" 200`) {
		t.Errorf("access log lacks the requests:\n%s", n.AccessLog())
	}
	n.Stop()
	n.Stop() // idempotent
	if _, err := http.Get(n.URL + "/healthz"); err == nil {
		t.Errorf("nginx still answers after Stop")
	}
}

func TestNginxOptionsRejected(t *testing.T) {
	for _, o := range []NginxOptions{
		{AuthURL: "http://127.0.0.1:1/v", Upstream: ""},
		{AuthURL: "", Upstream: "http://127.0.0.1:1"},
		{AuthURL: "http://localhost:1/v", Upstream: "http://127.0.0.1:1"},
		{AuthURL: "http://127.0.0.1:1/v;x", Upstream: "http://127.0.0.1:1"},
		{AuthURL: "http://127.0.0.1:1/v", Upstream: "http://127.0.0.1:1", ResponseHeaders: []string{"X Bad"}},
		{AuthURL: "http://127.0.0.1:1/v", Upstream: "http://127.0.0.1:1", Plain: true, AuthMethod: "GET"},
		{AuthURL: "http://127.0.0.1:1/v", Upstream: "http://127.0.0.1:1", ClearClientStatements: true},
		{AuthURL: "http://127.0.0.1:1/v", Upstream: "http://127.0.0.1:1", URIHeader: "X Bad"},
	} {
		if _, err := newConfData(t.TempDir(), o); err == nil {
			t.Errorf("%+v: accepted", o)
		}
	}
}

// The plain auth_request configuration states the original request only in
// X-Original-URI and X-Original-Method, and passes the client's headers on:
// a client-sent X-Original-URL reaches the verifier (issue 14, bypass 3),
// which must therefore refuse statements that disagree.
func TestPlainNginx(t *testing.T) {
	t.Parallel()
	n, stub := setup(t, NginxOptions{Plain: true, ResponseHeaders: headers})

	const uri = "/api/items?x=1"
	resp, body := do(t, http.MethodPost, n.URL+uri, "payload", map[string]string{"Authorization": "Bearer good"})
	e := echoed(t, resp, body)
	if e.Method != http.MethodPost || e.URI != uri || e.Body != "payload" {
		t.Errorf("upstream got %s %s %q, want POST %s with the body", e.Method, e.URI, e.Body, uri)
	}
	wantHeader(t, "upstream", e.Headers, "X-Auth-Application", "stub")
	r := stub.only(t)
	if r.Path != verifyPath || r.Body != "" {
		t.Errorf("verifier got %s with body %q, want %s without one", r.Path, r.Body, verifyPath)
	}
	wantHeader(t, "verifier", r.Header, "X-Original-URI", uri)
	wantHeader(t, "verifier", r.Header, "X-Original-Method", "POST")
	wantNoHeader(t, "verifier", r.Header, "X-Original-URL")

	// The attack: the client states another request, and nginx passes it.
	resp, body = do(t, http.MethodGet, n.URL+"/forbidden", "", map[string]string{
		"Authorization": "Bearer good", "X-Original-URL": "/allowed", "X-Forwarded-Uri": "/allowed",
		"X-HTTP-Method-Override": "DELETE",
	})
	echoed(t, resp, body)
	r = stub.only(t)
	wantHeader(t, "verifier", r.Header, "X-Original-URI", "/forbidden")
	wantHeader(t, "verifier", r.Header, "X-Original-URL", "/allowed")
	wantHeader(t, "verifier", r.Header, "X-Forwarded-Uri", "/allowed")
	wantHeader(t, "verifier", r.Header, "X-Http-Method-Override", "DELETE")
}

// With ClearClientStatements (docs/ingress-nginx.md's hardening), no
// client-sent statement of the request reaches the upstream, and only the
// method overrides reach the verifier, which refuses a mismatch: cleared
// for the verifier alone, an override the upstream honours would have
// another method served than the one judged.
func TestPlainNginxClearsClientStatements(t *testing.T) {
	t.Parallel()
	n, stub := setup(t, NginxOptions{Plain: true, ClearClientStatements: true, ResponseHeaders: headers})
	statements := map[string]string{
		"X-Original-URL": "/allowed", "X-Original-URI": "/allowed", "X-Forwarded-Uri": "/allowed", "X-Forwarded-Method": "GET",
	}
	overrides := map[string]string{"X-HTTP-Method-Override": "GET", "X-HTTP-Method": "GET", "X-Method-Override": "GET"}
	hdr := map[string]string{"Authorization": "Bearer good"}
	for _, m := range []map[string]string{statements, overrides} {
		for k, v := range m {
			hdr[k] = v
		}
	}
	resp, body := do(t, http.MethodDelete, n.URL+"/forbidden", "", hdr)
	e := echoed(t, resp, body)
	r := stub.only(t)
	wantHeader(t, "verifier", r.Header, "X-Original-URI", "/forbidden")
	wantHeader(t, "verifier", r.Header, "X-Original-Method", "DELETE")
	wantHeader(t, "verifier", r.Header, "Authorization", "Bearer good")
	for k := range statements {
		if k != "X-Original-URI" {
			wantNoHeader(t, "verifier", r.Header, k)
		}
		wantNoHeader(t, "upstream", e.Headers, k)
	}
	for k, v := range overrides {
		wantHeader(t, "verifier", r.Header, k, v)
		wantNoHeader(t, "upstream", e.Headers, k)
	}
}

// URIHeader hands the auth subrequest nginx's normalised $uri of the
// original request, with both configurations.
func TestNginxURIHeader(t *testing.T) {
	t.Parallel()
	for _, plain := range []bool{false, true} {
		n, stub := setup(t, NginxOptions{Plain: plain, URIHeader: "X-Test-Uri"})
		for _, c := range []struct{ target, uri string }{
			{"/a/./b/../c%41?x=/y", "/a/cA"},
			{"//a//b/", "/a/b/"},
			{"/a%20b", "/a b"},
			{"/%20a%20", "/ a "},
			{"/a%01b", URIHeaderControl},
			{"/a%7fb", URIHeaderControl},
		} {
			status := rawStatus(t, n.URL, "GET "+c.target+" HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer good\r\nConnection: close\r\n\r\n")
			if status != http.StatusOK {
				t.Errorf("plain %v, %s: status %d", plain, c.target, status)
				continue
			}
			v := stub.only(t).Header.Get("X-Test-Uri")
			if got, ok := ParseURIHeader(v); !ok || got != c.uri {
				t.Errorf("plain %v, %s: X-Test-Uri %q, want $uri %q", plain, c.target, v, c.uri)
			}
		}
	}
}

// rawStatus sends request as it is on a new connection to base's host and
// returns the response's status code.
func rawStatus(t *testing.T, base, request string) int {
	t.Helper()
	c, err := net.DialTimeout("tcp", strings.TrimPrefix(base, "http://"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, request); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
