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

package upgrade

import (
	"context"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/keyward/keyward/internal/kube"
)

// applyWebhookConfigurations creates, or replaces, a release's generated
// webhook configurations (config/webhook/manifests.yaml) under the names a
// deployment gives them (keyward-<name>), calling the manager on
// https://localhost:<port> instead of through the webhook Service, as
// keyward dev does. They hold no CA bundle: the manager's self-managed
// certificate keeper injects it.
func applyWebhookConfigurations(ctx context.Context, c client.Client, manifests []byte, port string) error {
	objs, err := kube.DecodeYAML(manifests)
	if err != nil {
		return err
	}
	for _, u := range objs {
		u.SetName("keyward-" + u.GetName())
		hooks, _, err := unstructured.NestedSlice(u.Object, "webhooks")
		if err != nil {
			return err
		}
		for i, h := range hooks {
			hook, ok := h.(map[string]any)
			if !ok {
				return fmt.Errorf("%s: a webhook that is not an object", u.GetName())
			}
			path, _, _ := unstructured.NestedString(hook, "clientConfig", "service", "path")
			hook["clientConfig"] = map[string]any{"url": "https://localhost:" + port + path}
			hooks[i] = hook
		}
		if err := unstructured.SetNestedSlice(u.Object, hooks, "webhooks"); err != nil {
			return err
		}
		if err := createOrReplace(ctx, c, u); err != nil {
			return fmt.Errorf("applying %s %s: %w", u.GetKind(), u.GetName(), err)
		}
	}
	return nil
}

// createOrReplace creates u, or replaces the object of its name whole.
func createOrReplace(ctx context.Context, c client.Client, u *unstructured.Unstructured) error {
	err := c.Create(ctx, u)
	if !apierrors.IsAlreadyExists(err) {
		return err
	}
	old := &unstructured.Unstructured{}
	old.SetGroupVersionKind(u.GroupVersionKind())
	if err := c.Get(ctx, client.ObjectKeyFromObject(u), old); err != nil {
		return err
	}
	u.SetResourceVersion(old.GetResourceVersion())
	return c.Update(ctx, u)
}

// parseObjects decodes YAML documents of keyward objects into namespace ns.
func parseObjects(ns, docs string) ([]*unstructured.Unstructured, error) {
	objs, err := kube.DecodeYAML([]byte(strings.TrimSpace(docs)))
	if err != nil {
		return nil, err
	}
	for _, u := range objs {
		u.SetNamespace(ns)
	}
	return objs, nil
}
