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
// webhook configurations as keyward dev installs them
// (kube.LocalWebhookConfigurations: calling the manager on localhost).
func applyWebhookConfigurations(ctx context.Context, c client.Client, manifests []byte, port int) error {
	objs, err := kube.LocalWebhookConfigurations(manifests, port)
	if err != nil {
		return err
	}
	for _, u := range objs {
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
