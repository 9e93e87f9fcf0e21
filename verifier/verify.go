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
package verifier

import (
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	"github.com/keyward/keyward/internal/keys"
	"github.com/keyward/keyward/verifier/match"
)

// URL prefixes of the two families of endpoints.
const (
	verifyPrefix = "/v1/verify/"
	envoyPrefix  = "/v1/envoy/"
)

// Request is one verification, as the proxy described it.
type Request struct {
	Namespace, KeyGroup string
	// Method and URI are the original request's; URI may be an absolute
	// URL (X-Original-URL) or a path with a query.
	Method, URI string
	// AltMethod and AltURI are the other header family's (X-Forwarded-*
	// when X-Original-* were given), when a request carries both. A proxy
	// sets one family and passes the client's headers through, so a client
	// can forge the other: the two must then agree.
	AltMethod, AltURI string
	// Authorization and XAPIKey are the credential headers.
	Authorization, XAPIKey string
	// Client is the original client's address; invalid if unknown.
	Client netip.Addr
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
	switch {
	case strings.HasPrefix(raw, verifyPrefix):
		rest = raw[len(verifyPrefix):]
		// ingress-nginx and nginx auth_request, then Traefik ForwardAuth
		// and Gateway API ExternalAuth.
		req.Method = firstHeader(r.Header, "X-Original-Method")
		req.URI = firstHeader(r.Header, "X-Original-Url", "X-Original-Uri")
		fwdMethod, fwdURI := firstHeader(r.Header, "X-Forwarded-Method"), firstHeader(r.Header, "X-Forwarded-Uri")
		switch {
		case req.URI == "" && req.Method == "":
			req.Method, req.URI = fwdMethod, fwdURI
		case fwdMethod != "" || fwdURI != "":
			req.AltMethod, req.AltURI = fwdMethod, fwdURI
		}
	case strings.HasPrefix(raw, envoyPrefix):
		// Envoy ext_authz HTTP with path_prefix: the original path follows
		// the group in the request's own path, and the method is its own.
		rest = raw[len(envoyPrefix):]
		req.Method = r.Method
	default:
		return req, false
	}
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
	if strings.HasPrefix(raw, envoyPrefix) {
		req.URI = rest
		if req.URI == "" || req.URI[0] == '?' {
			req.URI = "/" + req.URI
		}
	}
	req.Namespace, req.KeyGroup = ns, name
	// The names are canonical already: index the map, as Get would after
	// checking and canonicalising each name again.
	req.Authorization = headerValue(r.Header, "Authorization")
	req.XAPIKey = headerValue(r.Header, "X-Api-Key")
	req.Client, _ = h.trusted.ClientAddr(r.RemoteAddr, headerValue(r.Header, "X-Real-Ip"), headerList(r.Header, "X-Forwarded-For"))
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

// headerValue is h.Get(name) for a name in canonical form.
func headerValue(h http.Header, name string) string {
	if v := h[name]; len(v) > 0 {
		return v[0]
	}
	return ""
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

func firstHeader(h http.Header, names ...string) string {
	for _, n := range names {
		if v := h[n]; len(v) > 0 && v[0] != "" {
			return v[0]
		}
	}
	return ""
}

// Verify decides a request. It never allocates on the allowed path.
func (h *Handler) Verify(req *Request) Decision { return h.verify(req, h.now()) }

// verify decides a request at now.
func (h *Handler) verify(req *Request, now time.Time) Decision {
	// Credential: Bearer, then rest_api_key=, then X-API-Key.
	plaintext, ok := match.Credential(req.Authorization, req.XAPIKey)
	if !ok {
		return h.deny(req, ReasonMissing, nil)
	}
	// Checksum before any lookup: garbage costs a CRC, not a hash.
	if keys.CheckFormat(plaintext) != nil {
		return h.deny(req, ReasonMalformed, nil)
	}
	// Digest and lookup. A key of another group is as unknown as no key.
	e, g := h.store.lookup(keys.DigestOf(plaintext), req.Namespace, req.KeyGroup)
	if e == nil || g == nil || e.profile.namespace != req.Namespace || e.profile.group != req.KeyGroup {
		return h.deny(req, ReasonUnknown, g)
	}
	// State, with expiry judged by the clock too: the controller's update
	// may lag expiresAt by a moment.
	if r := stateReason(e, now); r != ReasonOK {
		return Decision{Reason: r, entry: e, group: g}
	}
	// Path: decoded once, dot segments resolved, slashes collapsed; what
	// cannot be normalised safely is refused.
	// A proxy that sent no original URI or method gets no benefit of doubt.
	path, err := match.PathFromURL(req.URI)
	if err != nil || req.URI == "" || req.Method == "" || !altAgrees(req, path) {
		return Decision{Reason: ReasonPath, entry: e, group: g}
	}
	// Source: the key's own ranges, else the group's.
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

// altAgrees reports whether the other header family, if the request carries
// it, describes the same request.
func altAgrees(req *Request, path string) bool {
	if req.AltMethod == "" && req.AltURI == "" {
		return true
	}
	alt, err := match.PathFromURL(req.AltURI)
	return err == nil && alt == path && req.AltMethod == req.Method
}

// stateReason says why a key's state refuses it, or ReasonOK.
func stateReason(e *entry, now time.Time) Reason {
	if e.expiresAt != 0 && now.Unix() >= e.expiresAt {
		return ReasonExpired
	}
	return e.refusal
}

func (h *Handler) deny(_ *Request, reason Reason, g *group) Decision {
	return Decision{Reason: reason, group: g}
}

func sourceAllowed(e *entry, g *group, client netip.Addr) bool {
	if r := e.profile.sources; r != nil {
		return r.Allows(client)
	}
	return !g.noSource && g.sources.Allows(client)
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
