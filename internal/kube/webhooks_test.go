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

package kube_test

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/keyward/keyward/config"
	"github.com/keyward/keyward/internal/kube"
)

// Every webhook of the shipped configurations calls the manager on
// localhost at the path its Service reference names, under the name a
// deployment gives the configuration.
func TestLocalWebhookConfigurations(t *testing.T) {
	shipped, err := kube.DecodeYAML(config.Webhooks)
	if err != nil {
		t.Fatal(err)
	}
	local, err := kube.LocalWebhookConfigurations(config.Webhooks, 9443)
	if err != nil {
		t.Fatal(err)
	}
	if len(local) != len(shipped) || len(local) == 0 {
		t.Fatalf("%d configurations, want the %d shipped", len(local), len(shipped))
	}
	hooks := 0
	for i, u := range local {
		if want := "keyward-" + shipped[i].GetName(); u.GetName() != want {
			t.Errorf("name %q, want %q", u.GetName(), want)
		}
		was, _, _ := unstructured.NestedSlice(shipped[i].Object, "webhooks")
		now, _, _ := unstructured.NestedSlice(u.Object, "webhooks")
		if len(now) != len(was) {
			t.Fatalf("%s: %d webhooks, want %d", u.GetName(), len(now), len(was))
		}
		for j := range now {
			path, _, _ := unstructured.NestedString(was[j].(map[string]any), "clientConfig", "service", "path")
			cc, _, _ := unstructured.NestedMap(now[j].(map[string]any), "clientConfig")
			if !strings.HasPrefix(path, "/") || len(cc) != 1 || cc["url"] != "https://localhost:9443"+path {
				t.Errorf("%s webhook %d: clientConfig %v, want only url https://localhost:9443%s", u.GetName(), j, cc, path)
			}
			hooks++
		}
	}
	if hooks == 0 {
		t.Fatal("no webhooks in the shipped configurations")
	}
}
