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

package keys

import "testing"

// What gitleaks does with these keys, run for real, is in
// cmd/kubectl-keyward (TestGitleaksRuleFindsEveryKey); this holds the
// cases it cannot plant cheaply.
func TestGitleaksDefaultsHide(t *testing.T) {
	for _, tt := range []struct {
		s    string
		want bool
	}{
		{"kw_7Hq2bV0xkq5d3TzN1uWcYpR8sLmE4f1Seatx", false},
		{"kw_7Hq2bV0xkq5d3TzN1uWcYpR8sLmE4f1Snull", true}, // ends with null
		{"kw_7Hq2bV0xkq5d3TzN1uWcYpR8sLmE4f1SNuLl", true},
		{"kw_7Hq2bV0xkq5d3TzN1uWcYpR8sLmE4fnullx", false}, // null, not at the end
		{"kw_7Hq2bV0xkq5FaLsE1uWcYpR8sLmE4f1Seatx", true}, // false anywhere
		{"truecar_7Hq2bV0xkq5d3TzN1uWcYpR8sLmE4f1Seatx", true},
		{"kw_true2bV0xkq5d3TzN1uWcYpR8sLmE4f1Seatx", false}, // true, not at the start
		{"null_7Hq2bV0xkq5d3TzN1uWcYpR8sLmE4f1Seatx", false},
	} {
		if got := GitleaksDefaultsHide(tt.s); got != tt.want {
			t.Errorf("GitleaksDefaultsHide(%q) = %v, want %v", tt.s, got, tt.want)
		}
	}
	for _, tt := range []struct {
		prefix string
		want   bool
	}{
		{"kw", false}, {"true", true}, {"trueid", true}, {"isfalse", true}, {"false1", true},
		{"tru", false}, {"null", false}, {"trunull", false}, {"xtrue", false},
	} {
		if got := PrefixHiddenFromGitleaks(tt.prefix); got != tt.want {
			t.Errorf("PrefixHiddenFromGitleaks(%q) = %v, want %v", tt.prefix, got, tt.want)
		}
	}
}
