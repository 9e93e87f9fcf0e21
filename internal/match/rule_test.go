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
)

func mustRule(t testing.TB, paths, methods []string) Rule {
	t.Helper()
	r, err := CompileRule(paths, methods)
	if err != nil {
		t.Fatalf("CompileRule(%q, %q): %v", paths, methods, err)
	}
	return r
}

func TestCompileRuleValidation(t *testing.T) {
	cases := []struct {
		paths, methods []string
		ok             bool
	}{
		{[]string{"/a"}, nil, true},
		{[]string{"/a/*"}, nil, true},
		{[]string{"/*"}, nil, true},
		{[]string{"/"}, nil, true},
		{[]string{"/a/", "/b/c/*"}, []string{"GET", "POST", "PURGE", "M-SEARCH"}, true},
		{[]string{"/café/*"}, nil, true},
		{nil, nil, false},
		{[]string{}, []string{"GET"}, false},
		{[]string{""}, nil, false},
		{[]string{"a"}, nil, false},
		{[]string{"*"}, nil, false},
		{[]string{"a/*"}, nil, false},
		{[]string{"/a*"}, nil, false},
		{[]string{"/a/*/b"}, nil, false},
		{[]string{"/a/**"}, nil, false},
		{[]string{"/*/*"}, nil, false},
		{[]string{"/a/b*"}, nil, false},
		{[]string{"//a"}, nil, false},
		{[]string{"/a/../b"}, nil, false},
		{[]string{"/a/./b"}, nil, false},
		{[]string{"/a/.."}, nil, false},
		{[]string{"/a/%2e%2e"}, nil, false},
		{[]string{"/a%20b"}, nil, false},
		{[]string{"/a%"}, nil, false},
		{[]string{"/a?x"}, nil, false},
		{[]string{"/a#x"}, nil, false},
		{[]string{"/a;x"}, nil, false},
		{[]string{"/a\\x"}, nil, false},
		{[]string{"/a\x00"}, nil, false},
		{[]string{"/a\n"}, nil, false},
		{[]string{"/\xff"}, nil, false},
		{[]string{"/" + strings.Repeat("a", MaxPathLength)}, nil, false},
		{[]string{"/a"}, []string{"get"}, false},
		{[]string{"/a"}, []string{"Get"}, false},
		{[]string{"/a"}, []string{""}, false},
		{[]string{"/a"}, []string{"*"}, false},
		{[]string{"/a"}, []string{"GET POST"}, false},
		{[]string{"/a"}, []string{"GET,POST"}, false},
		{[]string{"/a"}, []string{"GET\n"}, false},
	}
	for _, tc := range cases {
		_, err := CompileRule(tc.paths, tc.methods)
		if (err == nil) != tc.ok {
			t.Errorf("CompileRule(%q, %q) error = %v, want ok=%v", tc.paths, tc.methods, err, tc.ok)
		}
	}
}

func TestRuleMatches(t *testing.T) {
	dev := mustRule(t, []string{"/integration/device/*"}, []string{"POST"})
	exact := mustRule(t, []string{"/a", "/b/"}, nil)
	all := mustRule(t, []string{"/*"}, []string{"GET", "PURGE"})
	root := mustRule(t, []string{"/"}, nil)
	cases := []struct {
		r            *Rule
		method, path string
		want         bool
	}{
		{&dev, "POST", "/integration/device/x", true},
		{&dev, "POST", "/integration/device/x/y", true},
		{&dev, "POST", "/integration/device/", true},
		{&dev, "POST", "/integration/device", true},
		{&dev, "POST", "/integration/devicefoo", false},
		{&dev, "POST", "/integration/devic", false},
		{&dev, "POST", "/integration/", false},
		{&dev, "POST", "/integration", false},
		{&dev, "POST", "/Integration/device/x", false},
		{&dev, "POST", "/other/integration/device/x", false},
		{&dev, "GET", "/integration/device/x", false},
		{&dev, "post", "/integration/device/x", false},
		{&dev, "", "/integration/device/x", false},
		{&dev, "POST", "", false},
		{&exact, "GET", "/a", true},
		{&exact, "DELETE", "/a", true},
		{&exact, "WHATEVER", "/a", true},
		{&exact, "GET", "/a/", false},
		{&exact, "GET", "/A", false},
		{&exact, "GET", "/a/b", false},
		{&exact, "GET", "/b/", true},
		{&exact, "GET", "/b", false},
		{&exact, "GET", "/", false},
		{&all, "GET", "/", true},
		{&all, "GET", "/anything/at/all", true},
		{&all, "PURGE", "/x", true},
		{&all, "HEAD", "/x", false}, // HEAD does not imply GET
		{&all, "POST", "/x", false},
		{&all, "GET", "", false},
		{&all, "GET", "x", false},
		{&root, "GET", "/", true},
		{&root, "GET", "/a", false},
		{&Rule{}, "GET", "/", false},
	}
	for _, tc := range cases {
		if got := tc.r.Matches(tc.method, tc.path); got != tc.want {
			t.Errorf("Rule%+v.Matches(%q, %q) = %v, want %v", *tc.r, tc.method, tc.path, got, tc.want)
		}
	}
}

func TestAny(t *testing.T) {
	read := &Scope{Name: "read", Rules: []Rule{mustRule(t, []string{"/api/*"}, []string{"GET", "HEAD"})}}
	write := &Scope{Name: "write", Rules: []Rule{
		mustRule(t, []string{"/api/items/*"}, []string{"POST", "PUT"}),
		mustRule(t, []string{"/api/items/*"}, []string{"DELETE"}),
	}}
	scopes := []*Scope{nil, read, write}
	cases := []struct {
		method, path, want string
		ok                 bool
	}{
		{"GET", "/api/items/1", "read", true},
		{"HEAD", "/api", "read", true},
		{"POST", "/api/items/1", "write", true},
		{"DELETE", "/api/items", "write", true},
		{"DELETE", "/api/other", "", false},
		{"PATCH", "/api/items/1", "", false},
		{"GET", "/apix", "", false},
	}
	for _, tc := range cases {
		name, ok := Any(scopes, tc.method, tc.path)
		if name != tc.want || ok != tc.ok {
			t.Errorf("Any(%q, %q) = %q, %v; want %q, %v", tc.method, tc.path, name, ok, tc.want, tc.ok)
		}
		name2, ok2 := Set(scopes).Match(tc.method, tc.path)
		if name2 != name || ok2 != ok {
			t.Errorf("Set.Match disagrees with Any for %q %q", tc.method, tc.path)
		}
	}
	if _, ok := Any(nil, "GET", "/"); ok {
		t.Error("Any(nil) matched")
	}
}

// TestNoBypass is the security contract: a key granted POST on
// /integration/device/* and GET on exactly /status must not reach anything
// else, whatever the raw URI looks like. Every crafted URI must be refused
// by normalisation or fail to match.
func TestNoBypass(t *testing.T) {
	scopes := []*Scope{
		{Name: "device", Rules: []Rule{mustRule(t, []string{"/integration/device/*"}, []string{"POST"})}},
		{Name: "status", Rules: []Rule{mustRule(t, []string{"/status"}, []string{"GET"})}},
	}
	decide := func(method, raw string) (string, bool, error) {
		p, err := PathFromURL(raw)
		if err != nil {
			return "", false, err
		}
		name, ok := Any(scopes, method, p)
		return name, ok, nil
	}

	denied := []struct{ method, raw string }{
		{"POST", "/admin"},
		{"POST", "/integration/devices"},
		{"POST", "/integration/devicefoo"},
		{"POST", "/integration/device.json"},
		{"POST", "/integration/device/../admin"},
		{"POST", "/integration/device/../devices"},
		{"POST", "/integration/device/x/../../devices"},
		{"POST", "/integration/device/%2e%2e/%2e%2e/admin"},
		{"POST", "/integration/device/%2E%2E/%2e%2E/admin"},
		{"POST", "/integration/device/.%2e/.%2e/admin"},
		{"POST", "/integration/device/x/.%2e/.%2e/.%2e/admin"},
		{"POST", "/integration/device/../../../admin"},
		{"POST", "/integration/device/..%2f..%2fadmin"},
		{"POST", "/integration/device/..%2F..%2Fadmin"},
		{"POST", "/integration/device%2f..%2f..%2fadmin"},
		{"POST", "/integration/device%2fx"},
		{"POST", "/integration/device/..\\..\\admin"},
		{"POST", "/integration/device/..%5c..%5cadmin"},
		{"POST", "/integration/device/..%5C..%5Cadmin"},
		{"POST", "/integration/device/..;/..;/admin"},
		{"POST", "/integration/device;/../admin"},
		{"POST", "/integration/device/x;jsessionid=1/../../../admin"},
		{"POST", "/integration/device/x%3b/../../../admin"},
		{"POST", "/integration/device/x#/../../admin"},
		{"POST", "/admin#/integration/device/x"},
		{"POST", "/admin?/integration/device/x"},
		{"POST", "/admin?x=/integration/device/"},
		{"POST", "/integration/device/x%00/../../admin"},
		{"POST", "/integration/device/x\x00"},
		{"POST", "/integration/device%00/x"},
		{"POST", "/integration/device\t/x"},
		{"POST", "/integration/device%09/x"},
		{"POST", "/integration/device%0d%0a/x"},
		{"POST", "/integration/device%20/x"},
		{"POST", "/integration/device./x"},
		{"POST", "/integration/device/%c0%ae%c0%ae/%c0%ae%c0%ae/admin"},
		{"POST", "/integration/device/%e0%80%ae%e0%80%ae/admin"},
		{"POST", "/integration/device/%uff0e%uff0e/admin"},
		{"POST", "/Integration/device/x"},
		{"POST", "/INTEGRATION/DEVICE/x"},
		{"POST", "//admin"},
		{"POST", "/./admin"},
		{"POST", "%2fintegration/device/x"},
		{"POST", "integration/device/x"},
		{"POST", "http://evil/admin"},
		{"POST", "http://host\\@evil/integration/device/x"},
		{"POST", "https://host/integration/devices?x=/integration/device/"},
		{"POST", "https://host/integration/device/%2e%2e/admin"},
		{"GET", "/integration/device/x"},
		{"HEAD", "/integration/device/x"},
		{"post", "/integration/device/x"},
		{"POST ", "/integration/device/x"},
		{"GET", "/status/"},
		{"GET", "/status/x"},
		{"GET", "/status/../admin"},
		{"GET", "/status;x"},
		{"GET", "/status%3b"},
		{"GET", "/status%3B.css"},
		{"GET", "/status%2f..%2fadmin"},
		{"GET", "/status%2e"},
		{"GET", "/status."},
		{"GET", "/Status"},
		{"GET", "/status%00"},
		{"GET", "/status\\"},
		{"POST", "/status"},
		{"HEAD", "/status"},
		{"get", "/status"},
		{"GET", "/" + strings.Repeat("a/", MaxPathLength/2) + "../status"},
	}
	for _, tc := range denied {
		name, ok, err := decide(tc.method, tc.raw)
		if ok {
			t.Errorf("BYPASS: %s %q granted by scope %q", tc.method, tc.raw, name)
		}
		_ = err
	}

	allowed := []struct{ method, raw, scope string }{
		{"POST", "/integration/device/x", "device"},
		{"POST", "/integration/device/x/y", "device"},
		{"POST", "/integration/device/", "device"},
		{"POST", "/integration/device", "device"},
		{"POST", "/integration/device/a/../b", "device"},
		{"POST", "/integration/device/x/..", "device"},
		{"POST", "/integration//device///x", "device"},
		{"POST", "/integration/%64evice/x", "device"},
		{"POST", "/integration/device/x?next=/admin", "device"},
		{"POST", "https://api.example.com/integration/device/abc?token=1", "device"},
		{"POST", "http://api.example.com:8080//integration/device/./abc", "device"},
		{"POST", "/integration/device/caf%C3%A9", "device"},
		{"GET", "/status", "status"},
		{"GET", "/status?verbose=1", "status"},
		{"GET", "/./status", "status"},
		{"GET", "//status", "status"},
		{"GET", "/x/../status", "status"},
		{"GET", "/%73tatus", "status"},
		{"GET", "https://h/status", "status"},
		{"GET", "https://h/status?x#y", "status"},
	}
	for _, tc := range allowed {
		name, ok, err := decide(tc.method, tc.raw)
		if err != nil || !ok || name != tc.scope {
			t.Errorf("%s %q = %q, %v, %v; want scope %q", tc.method, tc.raw, name, ok, err, tc.scope)
		}
	}

	// A handful of the denials must be refusals, not mere mismatches.
	for _, raw := range []string{
		"/integration/device/..%2f..%2fadmin",
		"/integration/device/..;/..;/admin",
		"/integration/device/x#/../../admin",
		"/integration/device/../../../admin",
		"/integration/device/..%5c..%5cadmin",
		// Double encoding: a backend that decodes again would climb out.
		"/integration/device/%252e%252e/%252e%252e/admin",
		// A dot segment only once decoded: a backend routing on the path
		// as sent would serve /integration/device/a/%2e%2e/... as device.
		"/integration/device/a/%2e%2e/b",
		"/admin/%2e%2e/integration/device/a",
	} {
		if _, err := PathFromURL(raw); !errors.Is(err, ErrUnsafePath) {
			t.Errorf("PathFromURL(%q) error = %v, want ErrUnsafePath", raw, err)
		}
	}
}
