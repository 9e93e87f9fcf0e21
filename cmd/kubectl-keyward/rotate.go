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
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	keywardv1alpha1 "github.com/keyward/keyward/api/v1alpha1"
)

// rotateValueFormat is RFC 3339 to the nanosecond, fixed width: each
// request a new value, in order.
const rotateValueFormat = "2006-01-02T15:04:05.000000000Z07:00"

func newRotateCommand(o *options) *cobra.Command {
	return &cobra.Command{
		Use:   "rotate NAME",
		Short: "Start one rotation of an APIKey: a successor key, the current one kept for the overlap",
		Long: `Sets the annotation keyward.dev/rotate to a new value (the time, to the
nanosecond): keyward mints a successor into the delivery Secret and keeps
the current key working for the rotation's overlap (24h unless
spec.rotation.overlap says otherwise).`,
		Example: `  kubectl keyward rotate acme-dashboard-2027 -n iot`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := o.connect()
			if err != nil {
				return err
			}
			name := args[0]
			value := o.now().UTC().Format(rotateValueFormat)
			b, err := json.Marshal(map[string]any{"metadata": map[string]any{
				"annotations": map[string]string{keywardv1alpha1.AnnotationRotate: value},
			}})
			if err != nil {
				return err
			}
			key := &keywardv1alpha1.APIKey{}
			key.Namespace, key.Name = cl.namespace, name
			acc := access{verb: verbPatch, resource: resourceAPIKeys, namespace: cl.namespace, name: name, hint: grantedByResponderClusterRole}
			if err := acc.wrap(cl.client.Patch(commandContext(cmd), key, client.RawPatch(types.MergePatchType, b))); err != nil {
				return err
			}
			return rotationRequested(o, key, value)
		},
	}
}

// rotationRequested reports a request, from the APIKey as the patch left
// it: a key in a final phase never rotates, which is an error; one not
// issued yet, or whose previous key is still in its overlap, gets a note.
func rotationRequested(o *options, key *keywardv1alpha1.APIKey, value string) error {
	switch p := key.Status.Phase; p {
	case keywardv1alpha1.APIKeyRevoked, keywardv1alpha1.APIKeyExpired, keywardv1alpha1.APIKeyRejected:
		return fmt.Errorf("apikey %s is %s, which is final: it will not rotate; create a new APIKey for a working key", key.Name, p)
	}
	fmt.Fprintf(o.streams.Out, "apikey.keyward.dev/%s rotation requested (%s=%s)\n", key.Name, keywardv1alpha1.AnnotationRotate, value)
	switch r := key.Status.Rotation; {
	case key.Status.KeyID == "":
		fmt.Fprintf(o.streams.ErrOut, "note: apikey %s has no key yet; nothing rotates, and its first key is issued as usual\n", key.Name)
	case r != nil && r.PreviousKeyExpiresAt != nil && o.now().Before(r.PreviousKeyExpiresAt.Time):
		fmt.Fprintf(o.streams.ErrOut, "note: key %s, replaced by the last rotation, works until %s; this rotation starts then\n",
			r.PreviousKeyID, r.PreviousKeyExpiresAt.UTC().Format(time.RFC3339))
	}
	return nil
}
