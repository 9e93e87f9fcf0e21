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

package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	keywardv1alpha1 "github.com/keyward/keyward/api/v1alpha1"
	"github.com/keyward/keyward/internal/keys"
	"github.com/keyward/keyward/internal/record"
)

// deliveryAPIKeyNext is where a rotation stages the successor key in the
// delivery Secret before promoting it to api-key (DESIGN §2).
const deliveryAPIKeyNext = "api-key-next"

var errRotating = errors.New("a rotation is in progress (the delivery Secret holds a staged successor): nothing was printed or deleted; run get-key --forget again once it completes")

func newGetKeyCommand(o *options) *cobra.Command {
	var forget bool
	cmd := &cobra.Command{
		Use:   "get-key NAME",
		Short: "Print an APIKey's key, from its delivery Secret; --forget deletes the Secret after",
		Long: `Prints the plaintext of the APIKey's key (api-key in its delivery Secret),
to hand it to its consumer. With --forget, deletes the delivery Secret once
printed: the key keeps working (its digest is what makes it valid), and this
was its only copy in the cluster.

The Secret must name the APIKey as its controller, and its key must have
the ID status.keyID names (or, during a rotation,
status.rotation.previousKeyID, until status.rotation.previousKeyExpiresAt). Anyone who may write Secrets in the
namespace can write into it: this refuses a working key of another APIKey
substituted there (key IDs differ), though not a made-up key given the
same ID, which never verifies.`,
		Example: `  kubectl keyward get-key acme-dashboard-2027 -n iot --forget | vault kv put secret/acme api-key=-`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := o.connect()
			if err != nil {
				return err
			}
			return o.getKey(commandContext(cmd), cl, args[0], forget)
		},
	}
	cmd.Flags().BoolVar(&forget, "forget", false, "delete the delivery Secret after printing the key")
	return cmd
}

// getKey prints the key of the APIKey name and, with forget, deletes its
// delivery Secret.
func (o *options) getKey(ctx context.Context, cl *cluster, name string, forget bool) error {
	var key keywardv1alpha1.APIKey
	acc := access{verb: verbGet, resource: resourceAPIKeys, namespace: cl.namespace, name: name}
	if err := acc.wrap(cl.client.Get(ctx, types.NamespacedName{Namespace: cl.namespace, Name: name}, &key)); err != nil {
		return err
	}
	s, err := deliverySecret(ctx, cl.client, &key)
	if err != nil {
		return err
	}
	plaintext := string(s.Data[record.DeliveryAPIKey])
	k, err := keys.Parse(plaintext)
	if err != nil {
		return fmt.Errorf("the delivery Secret %s/%s holds no valid key under %q: %w", s.Namespace, s.Name, record.DeliveryAPIKey, err)
	}
	if err := issuedKey(&key, s.Name, k, o.now()); err != nil {
		return err
	}
	// Only a key staged by keyward can be in api-key-next mid-rotation;
	// anything else there is no key and no rotation waits on it.
	if keys.CheckFormat(string(s.Data[deliveryAPIKeyNext])) == nil && forget {
		return errRotating
	}
	if _, err := fmt.Fprintln(o.streams.Out, plaintext); err != nil {
		return err
	}
	switch p := key.Status.Phase; p {
	case keywardv1alpha1.APIKeyRevoked, keywardv1alpha1.APIKeyExpired, keywardv1alpha1.APIKeyRejected, keywardv1alpha1.APIKeyDisabled:
		fmt.Fprintf(o.streams.ErrOut, "note: apikey %s is %s: this key does not work now.\n", key.Name, p)
	}
	if !forget {
		fmt.Fprintf(o.streams.ErrOut, "The key is still in secret/%s: delete it once its consumer has it (get-key --forget).\n", s.Name)
		return nil
	}
	// Delete exactly what was printed: a rotation that rewrote the Secret
	// meanwhile keeps it.
	del := access{verb: verbDelete, resource: resourceSecrets, namespace: s.Namespace, name: s.Name}
	err = cl.client.Delete(ctx, s, client.Preconditions{UID: &s.UID, ResourceVersion: &s.ResourceVersion})
	if apierrors.IsConflict(err) {
		return fmt.Errorf("secret/%s changed since it was read (a rotation?) and was not deleted: run get-key again", s.Name)
	}
	if err := del.wrap(err); err != nil {
		return err
	}
	fmt.Fprintf(o.streams.ErrOut, "secret/%s deleted; the key keeps working, and this was its only copy in the cluster.\n", s.Name)
	return nil
}

// deliverySecret reads the delivery Secret of key, and makes sure that it
// is: a Secret of that name that key does not control could hold anything.
func deliverySecret(ctx context.Context, c client.Client, key *keywardv1alpha1.APIKey) (*corev1.Secret, error) {
	name := key.Status.SecretName
	if name == "" {
		name = key.DeliverySecretName()
	}
	var s corev1.Secret
	acc := access{verb: verbGet, resource: resourceSecrets, namespace: key.Namespace, name: name}
	err := c.Get(ctx, types.NamespacedName{Namespace: key.Namespace, Name: name}, &s)
	if apierrors.IsNotFound(err) {
		if key.Status.KeyID == "" {
			return nil, fmt.Errorf("apikey %s has no key yet (phase %s)", key.Name, orNone(string(key.Status.Phase)))
		}
		return nil, fmt.Errorf("secret/%s, the delivery Secret of apikey %s, is gone: its key (%s) was handed over and cannot be read again; rotate to get a new one", name, key.Name, key.Status.KeyID)
	}
	if err := acc.wrap(err); err != nil {
		return nil, err
	}
	if ref := metav1.GetControllerOf(&s); ref == nil || ref.UID != key.UID {
		return nil, fmt.Errorf("secret/%s is not the delivery Secret of apikey %s (it does not name the APIKey as its controller): not printed", name, key.Name)
	}
	return &s, nil
}

// issuedKey checks that k, read from the delivery Secret named secret, is
// a key keyward issued to key and that still works: anyone who may write
// Secrets in the namespace can write another key there.
func issuedKey(key *keywardv1alpha1.APIKey, secret string, k keys.Key, now time.Time) error {
	// Print only the key keyward issued: the current one or, mid-rotation,
	// the one it replaces.
	id, rot := k.ID(), key.Status.Rotation
	if id != key.Status.KeyID && (rot == nil || id != rot.PreviousKeyID) {
		if key.Status.KeyID == "" {
			return fmt.Errorf("apikey %s has no key yet (phase %s), but secret/%s holds one (%s) that keyward did not issue: not printed", key.Name, orNone(string(key.Status.Phase)), secret, id)
		}
		return fmt.Errorf("secret/%s holds key %s, not the key of apikey %s (%s): someone else wrote it there, or the status is behind a rotation (run get-key again in a moment); not printed", secret, id, key.Name, key.Status.KeyID)
	}
	// The key a rotation replaced is handed over only while it works:
	// mid-rotation, before its successor is promoted. Written back once its
	// overlap has ended, it is a dead key.
	if id != key.Status.KeyID && rot.PreviousKeyExpiresAt != nil && !rot.PreviousKeyExpiresAt.After(now) {
		return fmt.Errorf("secret/%s holds key %s, which a rotation of apikey %s replaced and which stopped working at %s; its key is %s: someone wrote the old key back, or the rotation was not promoted (see the Rotated condition); not printed",
			secret, id, key.Name, rot.PreviousKeyExpiresAt.UTC().Format(time.RFC3339), key.Status.KeyID)
	}
	return nil
}
