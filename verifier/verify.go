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

// Package verifier answers the external-auth calls an ingress makes before
// every request (ingress-nginx auth-url, nginx auth_request, Traefik
// ForwardAuth, Gateway API ExternalAuth, Envoy ext_authz), from memory.
//
// The request path, in this file, top to bottom: route → original method
// and path → credential → checksum → digest → lookup → group → state →
// path → source → scope → answer. Nothing on it calls the API server.
//
// The request judged must be the request the upstream will serve. A proxy
// sets its own headers and passes the client's on, so a call may carry
// several statements of the original request, some forged: in the verify
// dialect the URI from X-Original-URL, X-Original-URI and X-Forwarded-Uri,
// the method from X-Original-Method and X-Forwarded-Method, every line of
// each. The first is judged and all must agree (the same normalised path,
// the same method); a method-override header (X-HTTP-Method-Override,
// X-HTTP-Method, X-Method-Override) must name the judged method, in every
// dialect. Anything else is "403 path". More than one credential is
// "401 malformed". Checking costs no allocation when the statements are
// byte for byte the one judged, or clean paths (ingress-nginx's
// X-Original-URL beside X-Original-URI); a dirty one is normalised once.
//
// Around it: answer.go, the answers prepared once per reason; store.go, the
// compact store of keys and key groups; watch.go, the reflectors that fill
// it from the API server; usage.go, the last-use writer; metrics.go; and
// server.go, the listeners, probes and graceful stop.
package verifier

import (
	"errors"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	"github.com/keyward/keyward/internal/keys"
	"github.com/keyward/keyward/internal/match"
	"github.com/keyward/keyward/internal/rules"
)

// URL prefixes of the two families of endpoints.
const (
	verifyPrefix = "/v1/verify/"
	envoyPrefix  = "/v1/envoy/"
)

// Request is one verification, as the proxy described it.
type Request struct {
	Namespace, KeyGroup string
	// Method and URI are the original request's, as judged; URI may be an
	// absolute URL (X-Original-URL) or a path with a query.
	Method, URI string
	// Authorization and XAPIKey are the credential headers' lines.
	Authorization, XAPIKey []string
	// Client is the original client's address; invalid if unknown.
	Client netip.Addr

	// stated is everything else the call says about the original
	// request; Method and URI must agree with all of it.
	stated statements
}

// The headers that state the original request, in the order that picks
// the one judged (the first present).
var (
	uriHeaders      = [...]string{"X-Original-Url", "X-Original-Uri", "X-Forwarded-Uri"}
	methodHeaders   = [...]string{"X-Original-Method", "X-Forwarded-Method"}
	overrideHeaders = [...]string{"X-Http-Method-Override", "X-Http-Method", "X-Method-Override"}
)

// statements are the lines of every header that states the original
// request, as net/http holds them (no copy).
type statements struct {
	uris      [len(uriHeaders)][]string
	methods   [len(methodHeaders)][]string
	overrides [len(overrideHeaders)][]string
}

// readOriginal reads from h every line of every header of the verify
// dialect that states the original URI or method, and returns the first
// line of the first header present of each: the method and URI judged.
func (s *statements) readOriginal(h http.Header) (method, uri string) {
	for i, name := range uriHeaders {
		s.uris[i] = h[name]
	}
	for i, name := range methodHeaders {
		s.methods[i] = h[name]
	}
	return first(s.methods[:]), first(s.uris[:])
}

// readOverrides reads the method-override headers from h, in every
// dialect.
func (s *statements) readOverrides(h http.Header) {
	for i, name := range overrideHeaders {
		s.overrides[i] = h[name]
	}
}

// first is the first line of the first header present among headers.
func first(headers [][]string) string {
	for _, lines := range headers {
		if len(lines) > 0 {
			return lines[0]
		}
	}
	return ""
}

// agree reports whether every statement describes the request judged:
// each URI line the same normalised path (a line equal to the judged URI
// is not normalised again; an empty one states nothing and disagrees),
// each method line the same method, each method override the same method
// up to case.
func (s *statements) agree(method, uri, path string) bool {
	for _, lines := range s.methods {
		for _, m := range lines {
			if m != method {
				return false
			}
		}
	}
	for _, lines := range s.overrides {
		for _, m := range lines {
			if !strings.EqualFold(m, method) {
				return false
			}
		}
	}
	for _, lines := range s.uris {
		for _, u := range lines {
			if u == uri {
				continue
			}
			if p, err := match.PathFromURL(u); u == "" || err != nil || p != path {
				return false
			}
		}
	}
	return true
}

// Decision is the answer to a Request.
type Decision struct {
	Reason Reason
	entry  *entry
	group  *group
}

// Handler serves the verification endpoints.
type Handler struct {
	store   *Store
	trusted *match.TrustedProxies
	now     func() time.Time
	usage   *usageReporter // nil: last use is not recorded
	date    atomic.Pointer[httpDate]
}

// httpDate is the Date header of the answers given in one second.
type httpDate struct {
	unix  int64
	value []string
}

// dateHeader is the Date header for an answer given at now, formatted once
// per second and shared. Setting it spares net/http its own clock read and
// formatting for every answer.
func (h *Handler) dateHeader(now time.Time) []string {
	sec := now.Unix()
	if d := h.date.Load(); d != nil && d.unix == sec {
		return d.value
	}
	d := &httpDate{unix: sec, value: []string{now.UTC().Format(http.TimeFormat)}}
	h.date.Store(d)
	return d.value
}

// NewHandler returns a Handler answering from store, trusting client
// address headers only from trusted proxies.
func NewHandler(store *Store, trusted *match.TrustedProxies, usage *usageReporter) *Handler {
	return &Handler{store: store, trusted: trusted, now: time.Now, usage: usage}
}

// ServeHTTP routes a call to its dialect, verifies it and answers. It
// reads the clock once: the same instant judges expiry, records the use,
// dates the answer and starts the latency measured.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := h.now()
	req, ok := h.parse(r)
	if !ok {
		http.NotFound(w, r)
		return
	}
	d := h.verify(&req, now)
	w.Header()["Date"] = h.dateHeader(now)
	h.answer(w, &req, d)
	h.store.metrics.observe(d.group, d.Reason, time.Since(now))
}

// parse reads the namespace and group from the URL and the original
// request from the dialect's headers.
func (h *Handler) parse(r *http.Request) (Request, bool) {
	var req Request
	raw := r.RequestURI
	var rest string
	envoy := false
	switch {
	case strings.HasPrefix(raw, verifyPrefix):
		rest = raw[len(verifyPrefix):]
		// ingress-nginx and nginx auth_request, then Traefik ForwardAuth
		// and Gateway API ExternalAuth.
		req.Method, req.URI = req.stated.readOriginal(r.Header)
	case strings.HasPrefix(raw, envoyPrefix):
		// Envoy ext_authz HTTP with path_prefix: the original path follows
		// the group in the request's own path, and the method is its own.
		rest = raw[len(envoyPrefix):]
		req.Method = r.Method
		envoy = true
	default:
		return req, false
	}
	req.stated.readOverrides(r.Header)
	ns, rest, ok := strings.Cut(rest, "/")
	if !ok || ns == "" {
		return req, false
	}
	name := rest
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		name, rest = rest[:i], rest[i:]
	} else {
		rest = ""
	}
	if !dnsLabel(ns) || !dnsLabel(name) {
		return req, false
	}
	if !envoy && rest != "" && rest[0] == '/' {
		// /v1/verify/{namespace}/{keygroup} is the whole path: a longer one
		// (a mistyped auth-url, "/devices/x", "/billing/../devices") names
		// no group, rather than the group its first segments spell.
		return req, false
	}
	if envoy {
		req.URI = rest
		if req.URI == "" || req.URI[0] == '?' {
			req.URI = "/" + req.URI
		}
	}
	req.Namespace, req.KeyGroup = ns, name
	// The names are canonical already: index the map, as Get would after
	// checking and canonicalising each name again.
	req.Authorization = r.Header["Authorization"]
	req.XAPIKey = r.Header["X-Api-Key"]
	req.Client, _ = h.trusted.ClientAddr(r.RemoteAddr, headerList(r.Header, "X-Real-Ip"), headerList(r.Header, "X-Forwarded-For"))
	return req, true
}

// dnsLabel reports whether s can be a namespace or KeyGroup name, so that
// nothing else reaches a header or a metric label.
func dnsLabel(s string) bool {
	if len(s) == 0 || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}

// headerList is a list-valued header, its lines joined in order (RFC 9110
// 5.3), for a name in canonical form.
func headerList(h http.Header, name string) string {
	v := h[name]
	switch len(v) {
	case 0:
		return ""
	case 1:
		return v[0]
	}
	return strings.Join(v, ",")
}

// verify decides a request at now.
func (h *Handler) verify(req *Request, now time.Time) Decision {
	// Credential: Bearer, then rest_api_key=, then X-API-Key; more than
	// one, or one that cannot be a key, is malformed.
	plaintext, err := match.Credential(req.Authorization, req.XAPIKey)
	switch {
	case errors.Is(err, match.ErrAmbiguousCredential), errors.Is(err, match.ErrMalformedCredential):
		return h.deny(req, ReasonMalformed)
	case err != nil:
		return h.deny(req, ReasonMissing)
	}
	// Checksum before any lookup: garbage costs a CRC, not a hash.
	if keys.CheckFormat(plaintext) != nil {
		return h.deny(req, ReasonMalformed)
	}
	// Digest and lookup. A key of another group is as unknown as no key.
	e, g := h.store.lookup(keys.DigestOf(plaintext), req.Namespace, req.KeyGroup)
	if e == nil || g == nil || e.profile.namespace != req.Namespace || e.profile.group != req.KeyGroup {
		return Decision{Reason: ReasonUnknown, group: g}
	}
	// A key issued under a KeyGroup that was deleted since is revoked,
	// whatever the group of that name now says: the controller revokes it
	// too, but need not have yet.
	if rules.ParentReplaced(e.profile.groupUID, g.uid) {
		return Decision{Reason: ReasonRevoked, entry: e, group: g}
	}
	// State, with expiry judged by the clock too: the controller's update
	// may lag expiresAt by a moment.
	if r := stateReason(e, now); r != ReasonOK {
		return Decision{Reason: r, entry: e, group: g}
	}
	// Path: decoded once, dot segments resolved, slashes collapsed; what
	// cannot be normalised safely, or is stated ambiguously, is refused.
	path, ok := judgedPath(req)
	if !ok {
		return Decision{Reason: ReasonPath, entry: e, group: g}
	}
	// Source: the key's own ranges, within the group's.
	if !sourceAllowed(e, g, req.Client) {
		return Decision{Reason: ReasonSource, entry: e, group: g}
	}
	// Scope: any granted scope covering the method and path.
	if !scopeAllows(e, g, req.Method, path) {
		return Decision{Reason: ReasonScope, entry: e, group: g}
	}
	if h.usage != nil {
		h.usage.used(e, now)
	}
	return Decision{Reason: ReasonOK, entry: e, group: g}
}

// judgedPath is the normalised path of the original request, or false
// when it cannot be judged safely: a proxy that sent no original URI or
// method gets no benefit of doubt, a path that does not normalise safely
// is refused, and so is a request whose statements disagree.
func judgedPath(req *Request) (string, bool) {
	if req.URI == "" || req.Method == "" {
		return "", false
	}
	path, err := match.PathFromURL(req.URI)
	if err != nil || !req.stated.agree(req.Method, req.URI, path) {
		return "", false
	}
	return path, true
}

// stateReason says why a key's state refuses it, or ReasonOK.
func stateReason(e *entry, now time.Time) Reason {
	if e.expiresAt != 0 && now.Unix() >= e.expiresAt {
		return ReasonExpired
	}
	return e.refusal
}

// deny refuses a request before any key is found: counted, and answered
// with its realm, under the group it names if that exists.
func (h *Handler) deny(req *Request, reason Reason) Decision {
	return Decision{Reason: reason, group: h.store.group(req.Namespace, req.KeyGroup)}
}

// sourceAllowed: the key's own ranges, within the group's. A key's ranges
// replace the group's, and admission keeps them inside; a group that
// narrows its ranges later still bounds every key.
func sourceAllowed(e *entry, g *group, client netip.Addr) bool {
	if g.noSource || !g.sources.Allows(client) {
		return false
	}
	return e.profile.sources == nil || e.profile.sources.Allows(client)
}

func scopeAllows(e *entry, g *group, method, path string) bool {
	for _, name := range e.profile.scopes {
		if sc := g.scopes[name]; sc != nil && sc.Matches(method, path) {
			return true
		}
	}
	return false
}

// answer writes the decision: exactly 200 with the X-Auth-* headers, or the
// refusal with its reason.
func (h *Handler) answer(w http.ResponseWriter, req *Request, d Decision) {
	hdr := w.Header()
	if d.Reason == ReasonOK {
		e := d.entry
		p := e.profile
		hdr["X-Auth-Key"] = e.keyID[:]
		hdr["X-Auth-Application"] = p.headerApp
		hdr["X-Auth-Scopes"] = p.headerScope
		hdr["X-Auth-Namespace"] = p.headerNS
		hdr["X-Auth-External-Id"] = p.headerExtID
		hdr["Content-Length"] = zeroLength
		w.WriteHeader(http.StatusOK)
		return
	}
	a := answers[d.Reason]
	hdr["Content-Type"] = jsonType
	hdr["X-Auth-Reason"] = a.header
	hdr["Cache-Control"] = noStore
	if a.status == http.StatusUnauthorized {
		if d.group != nil {
			hdr["Www-Authenticate"] = d.group.realm
		} else {
			hdr["Www-Authenticate"] = []string{`Bearer realm="` + req.Namespace + "/" + req.KeyGroup + `"`}
		}
	}
	hdr["Content-Length"] = a.length
	w.WriteHeader(a.status)
	_, _ = w.Write(a.body)
}
