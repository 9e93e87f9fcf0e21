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

// Package index names the field indexes of the manager's cache and
// registers them, in one place, before the controllers and webhooks that
// list through them start (as Cluster API's internal/index).
package index

import (
	"context"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	keywardv1alpha1 "github.com/keyward/keyward/api/v1alpha1"
	"github.com/keyward/keyward/internal/record"
)

// Field indexes kept in the manager's cache for reverse lookups.
const (
	// APIKeyApplication indexes APIKeys by spec.application. It has the
	// same name as the CRD's selectable field, so one MatchingFields
	// option works against the cache and against the API server.
	APIKeyApplication = "spec.application"
	// ApplicationKeyGroup indexes Applications by spec.keyGroup, also a
	// selectable field of the CRD.
	ApplicationKeyGroup = "spec.keyGroup"
	// HashedSecretAPIKey indexes hashed Secrets by the <namespace>/<name>
	// of their APIKey, to find those an APIKey left behind.
	HashedSecretAPIKey = "hashed.apikey" // #nosec G101 -- an index name, not a credential
	// APIKeyCreator indexes APIKeys created by a ServiceAccount by that
	// ServiceAccount, "<namespace>/<name>".
	APIKeyCreator = "metadata.annotations.created-by.serviceaccount"
)

// Register adds every index to indexer: call it once, before the
// controllers and webhooks are set up.
func Register(ctx context.Context, indexer client.FieldIndexer) error {
	for _, i := range []struct {
		obj   client.Object
		field string
		fn    client.IndexerFunc
	}{
		{&keywardv1alpha1.APIKey{}, APIKeyApplication, func(o client.Object) []string {
			return []string{string(o.(*keywardv1alpha1.APIKey).Spec.Application)}
		}},
		{&keywardv1alpha1.Application{}, ApplicationKeyGroup, func(o client.Object) []string {
			return []string{string(o.(*keywardv1alpha1.Application).Spec.KeyGroup)}
		}},
		{&corev1.Secret{}, HashedSecretAPIKey, func(o client.Object) []string {
			l := o.GetLabels()
			if !record.IsHashed(l) {
				return nil
			}
			return []string{l[record.LabelNamespace] + "/" + l[record.LabelAPIKey]}
		}},
		{&keywardv1alpha1.APIKey{}, APIKeyCreator, func(o client.Object) []string {
			if sa, ok := CreatorServiceAccount(o); ok {
				return []string{sa.String()}
			}
			return nil
		}},
	} {
		if err := indexer.IndexField(ctx, i.obj, i.field, i.fn); err != nil {
			return err
		}
	}
	return nil
}

// ServiceAccountUserPrefix starts the user name of every ServiceAccount:
// system:serviceaccount:<namespace>:<name>.
const ServiceAccountUserPrefix = "system:serviceaccount:"

// CreatorServiceAccount is the ServiceAccount that created o (its
// keyward.dev/created-by annotation), if one did.
func CreatorServiceAccount(o client.Object) (client.ObjectKey, bool) {
	rest, ok := strings.CutPrefix(o.GetAnnotations()[keywardv1alpha1.AnnotationCreatedBy], ServiceAccountUserPrefix)
	if !ok {
		return client.ObjectKey{}, false
	}
	ns, name, ok := strings.Cut(rest, ":")
	if !ok || ns == "" || name == "" {
		return client.ObjectKey{}, false
	}
	return client.ObjectKey{Namespace: ns, Name: name}, true
}
