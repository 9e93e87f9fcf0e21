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
	"fmt"
	"testing"
)

const (
	cleanURI = "/integration/device/3f2a9c1e-77b0-4d5e-9a43-0c1d2e3f4a5b/telemetry?since=1700000000&limit=100"
	dirtyURI = "/integration//device/./3f2a9c1e%2D77b0/../3f2a9c1e-77b0-4d5e-9a43-0c1d2e3f4a5b/caf%C3%A9?x=1"
	fullURL  = "https://api.example.com/integration/device/3f2a9c1e-77b0-4d5e-9a43-0c1d2e3f4a5b/telemetry?since=1"
)

func benchScopes(tb testing.TB) []*Scope {
	var scopes []*Scope
	for i := 0; i < 8; i++ {
		scopes = append(scopes, &Scope{
			Name: fmt.Sprintf("scope-%d", i),
			Rules: []Rule{
				mustRule(tb, []string{fmt.Sprintf("/api/v%d/items/*", i), fmt.Sprintf("/api/v%d/status", i)}, []string{"GET", "HEAD"}),
				mustRule(tb, []string{fmt.Sprintf("/api/v%d/items/*", i)}, []string{"POST", "PUT", "DELETE"}),
			},
		})
	}
	return append(scopes, &Scope{Name: "device", Rules: []Rule{
		mustRule(tb, []string{"/integration/device/*"}, []string{"POST"}),
	}})
}

var sinkString string

// Header lines, as net/http holds them.
var (
	bearerLine   = []string{"Bearer kw_0123456789abcdef"}
	basicLine    = []string{"Basic Zm9vOmJhcg=="}
	apiKeyLine   = []string{" kw_0123456789abcdef "}
	otherKeyLine = []string{"kw_fedcba9876543210"}
)

func TestAllocs(t *testing.T) {
	scopes := benchScopes(t)
	tp, err := ParseTrustedProxies([]string{"10.0.0.0/8"})
	if err != nil {
		t.Fatal(err)
	}
	rule := scopes[len(scopes)-1].Rules[0]
	cases := []struct {
		name string
		max  float64
		f    func()
	}{
		{"NormalizePath/clean", 0, func() { sinkString, _ = NormalizePath(cleanURI) }},
		{"PathFromURL/clean", 0, func() { sinkString, _ = PathFromURL(fullURL) }},
		{"NormalizePath/dirty", 1, func() { sinkString, _ = NormalizePath(dirtyURI) }},
		{"NormalizePath/refused", 0, func() { sinkString, _ = NormalizePath("/a/..%2fadmin") }},
		{"Credential/bearer", 0, func() { sinkString, _ = Credential(bearerLine, nil) }},
		{"Credential/xapikey", 0, func() { sinkString, _ = Credential(basicLine, apiKeyLine) }},
		{"Credential/ambiguous", 0, func() { sinkString, _ = Credential(bearerLine, otherKeyLine) }},
		{"Rule.Matches", 0, func() { _ = rule.Matches("POST", "/integration/device/abc") }},
		{"Any", 0, func() { sinkString, _ = Any(scopes, "POST", "/integration/device/abc") }},
		{"ClientAddr/trusted", 0, func() { _, _ = tp.ClientAddr("10.1.2.3:5555", "", "198.51.100.1, 10.0.0.1") }},
		{"ClientAddr/v6", 0, func() { _, _ = tp.ClientAddr("[2001:db8::1]:443", "203.0.113.7", "") }},
	}
	for _, tc := range cases {
		if got := testing.AllocsPerRun(200, tc.f); got > tc.max {
			t.Errorf("%s: %v allocs per run, want <= %v", tc.name, got, tc.max)
		}
	}
}

func BenchmarkNormalizePath(b *testing.B) {
	for _, bc := range []struct{ name, in string }{
		{"clean", cleanURI},
		{"dirty", dirtyURI},
		{"url", fullURL},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if sinkString, err = PathFromURL(bc.in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkAny(b *testing.B) {
	scopes := benchScopes(b)
	for _, bc := range []struct{ name, method, path string }{
		{"last-scope", "POST", "/integration/device/3f2a9c1e/telemetry"},
		{"first-scope", "GET", "/api/v0/items/42"},
		{"no-match", "PATCH", "/admin/users"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				sinkString, _ = Any(scopes, bc.method, bc.path)
			}
		})
	}
}

func BenchmarkCredential(b *testing.B) {
	for _, bc := range []struct{ name, auth, xkey string }{
		{"bearer", "Bearer kw_live_0123456789abcdef0123456789abcdef", ""},
		{"rest_api_key", "rest_api_key=kw_live_0123456789abcdef0123456789abcdef", ""},
		{"x-api-key", "", "kw_live_0123456789abcdef0123456789abcdef"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			auth, xkey := lines(bc.auth), lines(bc.xkey)
			for b.Loop() {
				sinkString, _ = Credential(auth, xkey)
			}
		})
	}
}

func BenchmarkClientAddr(b *testing.B) {
	tp, err := ParseTrustedProxies([]string{"10.0.0.0/8", "172.16.0.0/12", "fd00::/8"})
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct{ name, remote, xri, xff string }{
		{"trusted-xri", "10.1.2.3:5555", "203.0.113.7", ""},
		{"trusted-xff", "10.1.2.3:5555", "", "198.51.100.1, 10.0.0.1"},
		{"untrusted", "192.0.2.1:1234", "203.0.113.7", ""},
		{"v6", "[fd00::1]:443", "2001:db8::1", ""},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, _ = tp.ClientAddr(bc.remote, bc.xri, bc.xff)
			}
		})
	}
}
