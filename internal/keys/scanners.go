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

import "regexp"

// gitleaksDefaultAllowlist is the first expression of the global allowlist
// of gitleaks' default rules (config/gitleaks.toml, v8.30.1). Its
// alternation is anchored only at its ends, so it allows any secret that
// starts with "true", holds "false" or ends with "null", in any case.
var gitleaksDefaultAllowlist = regexp.MustCompile(`(?i)^true|false|null$`)

// GitleaksDefaultsHide reports whether gitleaks, run with its default rules,
// drops the finding s. The rule of docs/secret-scanning/gitleaks.toml
// extends them and so inherits their global allowlist, which a
// configuration cannot turn off. A random key holds "false" or ends with
// "null" about twice in a million.
func GitleaksDefaultsHide(s string) bool { return gitleaksDefaultAllowlist.MatchString(s) }

// PrefixHiddenFromGitleaks reports whether gitleaks' default rules hide
// every key of prefix (GitleaksDefaultsHide): one that starts with "true"
// or holds "false".
func PrefixHiddenFromGitleaks(prefix string) bool {
	return GitleaksDefaultsHide(prefix + string(separator))
}
