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

// Command webhookconditions adds the APIKey webhooks' matchConditions
// (webhook.MatchConditions) to the webhook configurations controller-gen
// generated, which its markers cannot express. `make manifests` and
// hack/verify-generated.sh run it after controller-gen.
//
// Usage: go run ./hack/webhookconditions config/webhook/manifests.yaml
package main

import (
	"fmt"
	"os"
	"slices"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/keyward/keyward/webhook"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: webhookconditions MANIFESTS")
		os.Exit(2)
	}
	if err := rewrite(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "webhookconditions:", err)
		os.Exit(1)
	}
}

func rewrite(path string) error {
	b, err := os.ReadFile(path) // #nosec G304 G703 -- the manifest named on the command line
	if err != nil {
		return err
	}
	var conditions []any
	for _, c := range webhook.MatchConditions() {
		conditions = append(conditions, map[string]any{"name": c.Name, "expression": c.Expression})
	}
	found := 0
	var out []string
	for _, doc := range strings.Split(string(b), "\n---\n") {
		doc = strings.TrimPrefix(doc, "---\n")
		var obj map[string]any
		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		hooks, _ := obj["webhooks"].([]any)
		for _, h := range hooks {
			m, ok := h.(map[string]any)
			if name, _ := m["name"].(string); ok && slices.Contains(webhook.SwitchOffWebhooks, name) {
				m["matchConditions"] = conditions
				found++
			}
		}
		y, err := yaml.Marshal(obj)
		if err != nil {
			return err
		}
		out = append(out, string(y))
	}
	if found != len(webhook.SwitchOffWebhooks) {
		return fmt.Errorf("%s: found %d of the webhooks %v", path, found, webhook.SwitchOffWebhooks)
	}
	return os.WriteFile(path, []byte("---\n"+strings.Join(out, "---\n")), 0o644) // #nosec G306 G703 -- the manifest named on the command line, committed and world-readable like every other
}
