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
	"testing"
)

// lines is a header's lines: none for "".
func lines(v string) []string {
	if v == "" {
		return nil
	}
	return []string{v}
}

func TestCredential(t *testing.T) {
	cases := []struct {
		auth, xkey string
		want       string
		err        error
	}{
		{"Bearer kw_abc", "", "kw_abc", nil},
		{"bearer kw_abc", "", "kw_abc", nil},
		{"BEARER kw_abc", "", "kw_abc", nil},
		{"bEaReR kw_abc", "", "kw_abc", nil},
		{"Bearer    kw_abc", "", "kw_abc", nil},
		{"Bearer\tkw_abc", "", "kw_abc", nil},
		{"  Bearer kw_abc  ", "", "kw_abc", nil},
		{"\tBearer kw_abc\t", "", "kw_abc", nil},
		// The same key in both headers is one credential; different keys
		// are two.
		{"Bearer kw_abc", "kw_abc", "kw_abc", nil},
		{"Bearer kw_abc", " kw_abc\t", "kw_abc", nil},
		{"Bearer kw_abc", "kw_other", "", ErrAmbiguousCredential},
		{"rest_api_key=kw_abc", "kw_x", "", ErrAmbiguousCredential},
		{"rest_api_key=kw_abc", "kw_abc", "kw_abc", nil},
		{"Bearer", "", "", ErrNoCredential},
		{"Bearer ", "", "", ErrNoCredential},
		{"Bearer    ", "", "", ErrNoCredential},
		{"Bearer", "kw_x", "kw_x", nil},
		{"Bearer ", "kw_x", "kw_x", nil},
		{"Bearerkw_abc", "", "", ErrNoCredential},
		{"Bearerkw_abc", "kw_x", "kw_x", nil},
		{"Bearer kw abc", "", "", ErrMalformedCredential},
		// An unreadable credential is not skipped for another header's key.
		{"Bearer kw abc", "kw_x", "", ErrMalformedCredential},
		{"Bearer kw_a, Bearer kw_b", "", "", ErrMalformedCredential},
		{"Bearer kw_a, Bearer kw_b", "kw_a", "", ErrMalformedCredential},
		{"rest_api_key=kw a", "kw_x", "", ErrMalformedCredential},
		{"Bearer kw_x", "kw x", "", ErrMalformedCredential},
		{"Bearer kw_\x00abc", "", "", ErrMalformedCredential},
		{"Basic dXNlcjpwYXNz", "", "", ErrNoCredential},
		{"Basic dXNlcjpwYXNz", "kw_x", "kw_x", nil},
		{"Token kw_abc", "kw_x", "kw_x", nil},
		{"rest_api_key=kw_abc", "", "kw_abc", nil},
		{"rest_api_key= kw_abc ", "", "kw_abc", nil},
		{" rest_api_key=kw_abc", "", "kw_abc", nil},
		{"rest_api_key=", "", "", ErrNoCredential},
		{"rest_api_key=", "kw_x", "kw_x", nil},
		{"REST_API_KEY=kw_abc", "", "", ErrNoCredential},
		{"rest_api_key =kw_abc", "", "", ErrNoCredential},
		{"", "kw_x", "kw_x", nil},
		{"", "  kw_x\t", "kw_x", nil},
		{"   ", "kw_x", "kw_x", nil},
		{"", "", "", ErrNoCredential},
		{"", "   ", "", ErrNoCredential},
		{"", "kw x", "", ErrMalformedCredential},
		{"", "kw_x\r\n", "", ErrMalformedCredential},
		{"Bearer kw_a=b/c+d", "", "kw_a=b/c+d", nil},
	}
	for _, tc := range cases {
		got, err := Credential(lines(tc.auth), lines(tc.xkey))
		if got != tc.want || !errors.Is(err, tc.err) || (err == nil) != (tc.err == nil) {
			t.Errorf("Credential(%q, %q) = %q, %v; want %q, %v", tc.auth, tc.xkey, got, err, tc.want, tc.err)
		}
	}
}

// TestCredentialLines: more than one line of either header is more than
// one credential, whatever the lines hold; one line of each is judged as
// above.
func TestCredentialLines(t *testing.T) {
	for _, tc := range []struct {
		auth, xkey []string
		want       string
		err        error
	}{
		{[]string{"Bearer kw_a"}, nil, "kw_a", nil},
		{[]string{"Bearer kw_a", "Bearer kw_b"}, nil, "", ErrAmbiguousCredential},
		{[]string{"Bearer kw_a", "Bearer kw_a"}, nil, "", ErrAmbiguousCredential},
		{[]string{"Basic x", "Bearer kw_a"}, nil, "", ErrAmbiguousCredential},
		{[]string{"", ""}, nil, "", ErrAmbiguousCredential},
		{nil, []string{"kw_a", "kw_b"}, "", ErrAmbiguousCredential},
		{nil, []string{"kw_a", "kw_a"}, "", ErrAmbiguousCredential},
		{[]string{"Bearer kw_a"}, []string{"kw_a", ""}, "", ErrAmbiguousCredential},
		{[]string{""}, []string{""}, "", ErrNoCredential},
		{[]string{""}, []string{"kw_a"}, "kw_a", nil},
	} {
		got, err := Credential(tc.auth, tc.xkey)
		if got != tc.want || !errors.Is(err, tc.err) || (err == nil) != (tc.err == nil) {
			t.Errorf("Credential(%q, %q) = %q, %v; want %q, %v", tc.auth, tc.xkey, got, err, tc.want, tc.err)
		}
	}
}
