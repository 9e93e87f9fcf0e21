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

package match

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzNormalizePath checks, for every input:
//
//   - NormalizePath never panics and fails only with ErrUnsafePath;
//   - it agrees exactly with refNormalize, a slow reference implementation;
//   - PathFromURL agrees with NormalizePath on inputs starting with "/" and
//     on the same input behind "http://host";
//   - a successful output starts with "/", has no empty, "." or ".." segment
//     except that it may end in a single "/" (no "//", no "/./" or "/../",
//     no final "/." or "/.."), contains no '\', NUL or other control
//     character and no ';', no '%' followed by two hex digits (a backend
//     decoding again would see another path), is valid UTF-8 and is no
//     longer than the input's path part;
//   - idempotence: the output may contain a literal '%' (from "%25"), '?'
//     (from "%3F") or '#' (from "%23"), which mean something else when the
//     output is parsed again. What holds precisely is:
//     (a) an output with none of '%', '?', '#' normalises to itself, without
//     allocating a copy (it is clean); and
//     (b) for every output, re-escaping those three characters ('%'->"%25",
//     '?'->"%3F", '#'->"%23") and normalising yields the output again,
//     provided the escaped form fits in MaxPathLength.
func FuzzNormalizePath(f *testing.F) {
	for _, tc := range pathCases {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		out, err := NormalizePath(raw)
		ref, refOK := refNormalize(raw)
		if (err == nil) != refOK || refOK && out != ref {
			t.Fatalf("NormalizePath(%q) = %q, %v; reference = %q, %v", raw, out, err, ref, refOK)
		}
		if err != nil {
			if !errors.Is(err, ErrUnsafePath) {
				t.Fatalf("NormalizePath(%q) error %v is not ErrUnsafePath", raw, err)
			}
		}
		if raw == "" || raw[0] == '/' {
			u, uerr := PathFromURL(raw)
			if u != out || (uerr == nil) != (err == nil) {
				t.Fatalf("PathFromURL(%q) = %q, %v; NormalizePath = %q, %v", raw, u, uerr, out, err)
			}
			if raw != "" {
				u, uerr = PathFromURL("http://host" + raw)
				if u != out || (uerr == nil) != (err == nil) {
					t.Fatalf("PathFromURL(http://host + %q) = %q, %v; NormalizePath = %q, %v", raw, u, uerr, out, err)
				}
			}
		} else if _, uerr := PathFromURL(raw); uerr != nil && !errors.Is(uerr, ErrUnsafePath) {
			t.Fatalf("PathFromURL(%q) error %v is not ErrUnsafePath", raw, uerr)
		}
		if err != nil {
			return
		}
		checkNormalized(t, raw, out)

		if !strings.ContainsAny(out, "%?#") {
			again, err := NormalizePath(out)
			if err != nil || again != out {
				t.Fatalf("not idempotent: %q -> %q -> %q, %v", raw, out, again, err)
			}
		}
		esc := strings.NewReplacer("%", "%25", "?", "%3F", "#", "%23").Replace(out)
		if len(esc) <= MaxPathLength {
			again, err := NormalizePath(esc)
			if err != nil || again != out {
				t.Fatalf("escaped output does not round-trip: %q -> %q -> %q -> %q, %v", raw, out, esc, again, err)
			}
		}
	})
}

func checkNormalized(t *testing.T, raw, out string) {
	t.Helper()
	p, _, _ := strings.Cut(raw, "?")
	switch {
	case out == "" || out[0] != '/':
		t.Fatalf("NormalizePath(%q) = %q: does not start with /", raw, out)
	case strings.Contains(out, "//"):
		t.Fatalf("NormalizePath(%q) = %q: contains //", raw, out)
	case strings.Contains(out, "/./") || strings.Contains(out, "/../") ||
		strings.HasSuffix(out, "/.") || strings.HasSuffix(out, "/.."):
		t.Fatalf("NormalizePath(%q) = %q: contains a dot segment", raw, out)
	case strings.ContainsAny(out, "\\;\x7f"):
		t.Fatalf("NormalizePath(%q) = %q: contains a forbidden character", raw, out)
	case doubleEncodedRE.MatchString(out):
		t.Fatalf("NormalizePath(%q) = %q: a backend decoding again would see another path", raw, out)
	case !utf8.ValidString(out):
		t.Fatalf("NormalizePath(%q) = %q: invalid UTF-8", raw, out)
	case len(out) > len(p) && (raw != "" || out != "/"):
		t.Fatalf("NormalizePath(%q) = %q: longer than the input path", raw, out)
	}
	for i := 0; i < len(out); i++ {
		if out[i] < 0x20 {
			t.Fatalf("NormalizePath(%q) = %q: control character", raw, out)
		}
	}
}

// FuzzCredential checks that Credential never panics and that, with auth
// and xkey split into header lines at '\n' (none for ""):
//
//   - more than one line of either header is ErrAmbiguousCredential;
//   - a key returned is non-empty, blank-free and a substring of a line;
//   - when both headers carry a key, they are the same key or the answer
//     is ErrAmbiguousCredential; a key in only one header is returned;
//   - otherwise the answer is ErrNoCredential.
func FuzzCredential(f *testing.F) {
	for _, s := range [][2]string{
		{"Bearer kw_abc", ""},
		{"bearer\t kw_abc ", "x"},
		{"Bearer", "kw_x"},
		{"Basic dXNlcjpwYXNz", "kw_x"},
		{"rest_api_key=kw_abc", ""},
		{"rest_api_key=", " kw_x "},
		{"", "kw_x"},
		{"", ""},
		{"Bearer kw abc", "\x00"},
		{"Bearer kw_abc", "kw_other"},
		{"Bearer kw_abc", "kw_abc"},
		{"Bearer kw_a\nBearer kw_b", ""},
		{"", "kw_a\nkw_a"},
	} {
		f.Add(s[0], s[1])
	}
	split := func(v string) []string {
		if v == "" {
			return nil
		}
		return strings.Split(v, "\n")
	}
	f.Fuzz(func(t *testing.T, auth, xkey string) {
		al, xl := split(auth), split(xkey)
		k, err := Credential(al, xl)
		if err != nil {
			if k != "" || !errors.Is(err, ErrAmbiguousCredential) && !errors.Is(err, ErrNoCredential) && !errors.Is(err, ErrMalformedCredential) {
				t.Fatalf("Credential(%q, %q) = %q, %v", al, xl, k, err)
			}
		} else if !validKey(k) || strings.ContainsAny(k, " \t") {
			t.Fatalf("Credential(%q, %q) = %q: invalid key", al, xl, k)
		}
		if len(al) > 1 || len(xl) > 1 {
			if !errors.Is(err, ErrAmbiguousCredential) {
				t.Fatalf("Credential(%q, %q) = %q, %v; want ErrAmbiguousCredential for more than one line", al, xl, k, err)
			}
			return
		}
		var a, x string
		if len(al) == 1 {
			a = authorizationKey(al[0])
			if a != "" && !strings.Contains(al[0], a) {
				t.Fatalf("authorizationKey(%q) = %q: not a substring", al[0], a)
			}
		}
		if len(xl) == 1 {
			x = trimBlank(xl[0])
		}
		var want string
		var wantErr error
		switch {
		case a != "" && !validKey(a), x != "" && !validKey(x):
			wantErr = ErrMalformedCredential
		case a != "" && x != "" && a != x:
			wantErr = ErrAmbiguousCredential
		case a != "":
			want = a
		case x != "":
			want = x
		default:
			wantErr = ErrNoCredential
		}
		if k != want || !errors.Is(err, wantErr) || (err == nil) != (wantErr == nil) {
			t.Fatalf("Credential(%q, %q) = %q, %v; want %q, %v", al, xl, k, err, want, wantErr)
		}
		if err == nil && !strings.Contains(auth, k) && !strings.Contains(xkey, k) {
			t.Fatalf("Credential(%q, %q) = %q: not a substring of the input", al, xl, k)
		}
	})
}

// FuzzClientAddr checks that ClientAddr never panics, returns unmapped,
// zone-less, valid addresses, ignores the headers of untrusted peers,
// refuses a trusted peer's X-Real-IP that is no address, and believes the
// nearest untrusted X-Forwarded-For hop over the ones a client can forge to
// its left.
func FuzzClientAddr(f *testing.F) {
	tp, err := ParseTrustedProxies([]string{"10.0.0.0/8", "fd00::/8"})
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range [][3]string{
		{"10.1.2.3:5555", "203.0.113.7", ""},
		{"10.1.2.3:5555", "", "198.51.100.1, 10.0.0.1"},
		{"10.1.2.3", "garbage", "garbage"},
		{"[fd00::1]:443", "::ffff:203.0.113.7", ""},
		{"[::ffff:10.1.2.3]:80", "", "[2001:db8::2]:1234"},
		{"192.0.2.1:1234", "203.0.113.7", "198.51.100.1"},
		{"fe80::1%eth0", "", ""},
		{"@", "203.0.113.7", ""},
		{"", "", ""},
	} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, remote, xri, xff string) {
		a, ok := tp.ClientAddr(remote, xri, xff)
		peer, peerOK := parseAddr(remote)
		// Not ok: the peer does not parse, or a trusted peer sent an
		// X-Real-IP that does not.
		_, xriOK := parseAddr(xri)
		wantOK := peerOK && (!tp.Trusts(peer) || trimBlank(xri) == "" || xriOK)
		if ok != wantOK {
			t.Fatalf("ClientAddr(%q, %q, %q) ok = %v, want %v (peer parses %v, X-Real-IP parses %v)", remote, xri, xff, ok, wantOK, peerOK, xriOK)
		}
		if !ok {
			if a.IsValid() {
				t.Fatalf("ClientAddr(%q, %q, %q) = %v, false", remote, xri, xff, a)
			}
			return
		}
		if !a.IsValid() || a.Is4In6() || a.Zone() != "" {
			t.Fatalf("ClientAddr(%q, %q, %q) = %v: not a clean address", remote, xri, xff, a)
		}
		if !tp.Trusts(peer) && a != peer {
			t.Fatalf("ClientAddr(%q, %q, %q) = %v: untrusted peer %v's headers believed", remote, xri, xff, a, peer)
		}
		// The hop nearest the proxy wins over anything a client wrote to
		// its left.
		if tp.Trusts(peer) && trimBlank(xri) == "" {
			last := xff
			if i := strings.LastIndexByte(xff, ','); i >= 0 {
				last = xff[i+1:]
			}
			if h, ok := parseAddr(last); ok && !tp.Trusts(h) && a != h {
				t.Fatalf("ClientAddr(%q, %q, %q) = %v: the nearest hop %v is untrusted and should win", remote, xri, xff, a, h)
			}
		}
		if b, ok := (*TrustedProxies)(nil).ClientAddr(remote, xri, xff); !ok || b != peer {
			t.Fatalf("nil TrustedProxies: ClientAddr(%q, %q, %q) = %v, %v; want %v", remote, xri, xff, b, ok, peer)
		}
	})
}

// FuzzCompileRule checks that CompileRule and Matches never panic and that
// a compiled rule matches its own paths. paths and methods are
// newline-separated lists (an empty methods string means none).
func FuzzCompileRule(f *testing.F) {
	for _, s := range [][4]string{
		{"/integration/device/*", "POST", "POST", "/integration/device/x"},
		{"/status\n/a/b/", "GET\nHEAD", "HEAD", "/status"},
		{"/*", "", "DELETE", "/anything"},
		{"/", "PURGE", "PURGE", "/"},
		{"/a/*/b", "GET", "GET", "/a/x/b"},
		{"/a/../b", "get", "GET", "/b"},
		{"/a%2e", "*", "GET", "/a."},
		{"", "", "", ""},
	} {
		f.Add(s[0], s[1], s[2], s[3])
	}
	f.Fuzz(func(t *testing.T, paths, methods, method, path string) {
		ps := strings.Split(paths, "\n")
		var ms []string
		if methods != "" {
			ms = strings.Split(methods, "\n")
		}
		r, err := CompileRule(ps, ms)
		_ = r.Matches(method, path)
		if np, err := NormalizePath(path); err == nil {
			_ = r.Matches(method, np)
		}
		if err != nil {
			if r.Matches(method, path) || r.Matches("GET", "/") {
				t.Fatalf("failed CompileRule(%q, %q) returned a rule that matches", ps, ms)
			}
			return
		}
		m := "GET"
		if len(ms) > 0 {
			m = ms[0]
		}
		for _, p := range ps {
			if base, ok := strings.CutSuffix(p, "/*"); ok {
				for _, q := range []string{base + "/", base + "/x", base + "/x/y"} {
					if !r.Matches(m, q) {
						t.Fatalf("rule %q %q does not match %s %q", ps, ms, m, q)
					}
				}
				if base != "" && !r.Matches(m, base) {
					t.Fatalf("rule %q %q does not match %s %q", ps, ms, m, base)
				}
				if !r.Matches(m, base+"/") {
					t.Fatalf("rule %q %q does not match %s %q", ps, ms, m, base+"/")
				}
			} else if !r.Matches(m, p) {
				t.Fatalf("rule %q %q does not match %s %q", ps, ms, m, p)
			}
			if out, err := NormalizePath(p); err != nil && !strings.HasSuffix(p, "/*") || err == nil && out != p && !strings.HasSuffix(p, "/*") {
				t.Fatalf("compiled rule path %q is not normalised: %q, %v", p, out, err)
			}
		}
	})
}
