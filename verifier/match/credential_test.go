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

import "testing"

func TestCredential(t *testing.T) {
	cases := []struct {
		auth, xkey string
		want       string
		ok         bool
	}{
		{"Bearer kw_abc", "", "kw_abc", true},
		{"bearer kw_abc", "", "kw_abc", true},
		{"BEARER kw_abc", "", "kw_abc", true},
		{"bEaReR kw_abc", "", "kw_abc", true},
		{"Bearer    kw_abc", "", "kw_abc", true},
		{"Bearer\tkw_abc", "", "kw_abc", true},
		{"  Bearer kw_abc  ", "", "kw_abc", true},
		{"\tBearer kw_abc\t", "", "kw_abc", true},
		{"Bearer kw_abc", "kw_other", "kw_abc", true},
		{"Bearer", "", "", false},
		{"Bearer ", "", "", false},
		{"Bearer    ", "", "", false},
		{"Bearer", "kw_x", "kw_x", true},
		{"Bearer ", "kw_x", "kw_x", true},
		{"Bearerkw_abc", "", "", false},
		{"Bearerkw_abc", "kw_x", "kw_x", true},
		{"Bearer kw abc", "", "", false},
		{"Bearer kw abc", "kw_x", "kw_x", true},
		{"Bearer kw_\x00abc", "", "", false},
		{"Basic dXNlcjpwYXNz", "", "", false},
		{"Basic dXNlcjpwYXNz", "kw_x", "kw_x", true},
		{"Token kw_abc", "kw_x", "kw_x", true},
		{"rest_api_key=kw_abc", "", "kw_abc", true},
		{"rest_api_key= kw_abc ", "", "kw_abc", true},
		{" rest_api_key=kw_abc", "", "kw_abc", true},
		{"rest_api_key=", "", "", false},
		{"rest_api_key=", "kw_x", "kw_x", true},
		{"REST_API_KEY=kw_abc", "", "", false},
		{"rest_api_key =kw_abc", "", "", false},
		{"rest_api_key=kw_abc", "kw_x", "kw_abc", true},
		{"", "kw_x", "kw_x", true},
		{"", "  kw_x\t", "kw_x", true},
		{"   ", "kw_x", "kw_x", true},
		{"", "", "", false},
		{"", "   ", "", false},
		{"", "kw x", "", false},
		{"", "kw_x\r\n", "", false},
		{"Bearer kw_a=b/c+d", "", "kw_a=b/c+d", true},
	}
	for _, tc := range cases {
		got, ok := Credential(tc.auth, tc.xkey)
		if got != tc.want || ok != tc.ok {
			t.Errorf("Credential(%q, %q) = %q, %v; want %q, %v", tc.auth, tc.xkey, got, ok, tc.want, tc.ok)
		}
	}
}
