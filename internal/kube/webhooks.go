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

package kube

import (
	"fmt"
	"strconv"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// LocalWebhookConfigurations reads the generated webhook configurations
// (config/webhook/manifests.yaml) under the names a deployment gives them
// (keyward-<name>), each webhook calling the manager at
// https://localhost:<port><path> instead of through the webhook Service:
// how a manager running as a process on this machine is registered. They
// hold no CA bundle; the manager's certificate keeper injects it.
func LocalWebhookConfigurations(manifests []byte, port int) ([]*unstructured.Unstructured, error) {
	objs, err := DecodeYAML(manifests)
	if err != nil {
		return nil, err
	}
	for _, u := range objs {
		u.SetName("keyward-" + u.GetName())
		hooks, _, err := unstructured.NestedSlice(u.Object, "webhooks")
		if err != nil {
			return nil, fmt.Errorf("%s: %w", u.GetName(), err)
		}
		for i, h := range hooks {
			hook, ok := h.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("%s: a webhook that is not an object", u.GetName())
			}
			path, _, _ := unstructured.NestedString(hook, "clientConfig", "service", "path")
			hook["clientConfig"] = map[string]any{"url": "https://localhost:" + strconv.Itoa(port) + path}
			hooks[i] = hook
		}
		if err := unstructured.SetNestedSlice(u.Object, hooks, "webhooks"); err != nil {
			return nil, err
		}
	}
	return objs, nil
}
