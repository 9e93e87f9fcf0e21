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

package webhook

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	keywardv1alpha1 "github.com/keyward/keyward/api/v1alpha1"
	"github.com/keyward/keyward/internal/index"
	"github.com/keyward/keyward/internal/rules"
)

// Deletion protection covers what holds keys as well as the keys: deleting
// an Application or a KeyGroup stops all their keys, so it asks for the
// same confirmation as deleting one of them (rules.DeletionConfirmation).

// lastUses returns the last use of every key of the applications that is
// not revoked, either generation's, from the cache.
func (l lookup) lastUses(ctx context.Context, namespace string, apps ...string) ([]*metav1.Time, error) {
	var used []*metav1.Time
	for _, app := range apps {
		var list keywardv1alpha1.APIKeyList
		if err := l.cache.List(ctx, &list, client.InNamespace(namespace), client.MatchingFields{index.APIKeyApplication: app}); err != nil {
			return nil, fmt.Errorf("listing the APIKeys of Application %s/%s: %w", namespace, app, err)
		}
		for i := range list.Items {
			if k := &list.Items[i]; !k.Spec.Revoked {
				used = append(used, k.LastUsed())
			}
		}
	}
	return used, nil
}

// confirmDelete refuses the deletion of obj when c calls for a confirmation
// that its keyward.dev/confirm-delete annotation does not give: want is the
// value that confirms, what describes it. Deleting a namespace deletes what
// it holds without asking: deleting the namespace was the confirmation.
func (l lookup) confirmDelete(ctx context.Context, kind schema.GroupKind, obj metav1.Object, c rules.Confirmation, g *keywardv1alpha1.KeyGroup, want, what string) (admission.Warnings, error) {
	if !c.Needed {
		return nil, nil
	}
	why := fmt.Sprintf("KeyGroup %q asks to confirm deleting any of its keys, and this %s holds some", g.Name, kind.Kind)
	if !c.Always {
		why = fmt.Sprintf("KeyGroup %q asks to confirm deleting keys used within %s, and this %s holds a key last used at %s",
			g.Name, c.Window, kind.Kind, c.LastUsed.UTC().Format(time.RFC3339))
	}
	p := annotationsPath.Key(keywardv1alpha1.AnnotationConfirmDelete)
	var errs field.ErrorList
	switch got := obj.GetAnnotations()[keywardv1alpha1.AnnotationConfirmDelete]; {
	case got == "":
		errs = field.ErrorList{field.Required(p, fmt.Sprintf("%s: set this annotation to %s, then delete again", why, what))}
	case got != want:
		errs = field.ErrorList{field.Invalid(p, got, fmt.Sprintf("%s: must be %s", why, what))}
	default:
		return nil, nil
	}
	ns := &corev1.Namespace{}
	if err := l.live.Get(ctx, client.ObjectKey{Name: obj.GetNamespace()}, ns); err == nil && !ns.DeletionTimestamp.IsZero() {
		logf.FromContext(ctx).V(1).Info("Deleting a protected object with its namespace", "kind", kind.Kind, "object", klog.KObj(obj))
		return nil, nil
	}
	return result(kind, obj.GetName(), validation{errs: errs})
}

// internalErrorOrNil is internalError(err), or nil for a nil err.
func internalErrorOrNil(err error) error {
	if err == nil {
		return nil
	}
	return internalError(err)
}
