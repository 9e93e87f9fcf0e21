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
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	keywardv1alpha1 "github.com/keyward/keyward/api/v1alpha1"
)

var errKeyFlag = errors.New("--key takes only \"-\": the key is read from stdin, never from the command line (where shell history and ps would keep it)")

func newRevokeCommand(o *options) *cobra.Command {
	var keyFrom, operatorNS string
	var force bool
	cmd := &cobra.Command{
		Use:   "revoke NAME | revoke --key -",
		Short: "Revoke an APIKey, by name or from a leaked key's plaintext on stdin",
		Long: `Sets spec.revoked on an APIKey: final; every verifier refuses its key within
about a second. With --key -, the key is read from stdin, identified as by
"identify" (hashed locally, never sent) and its APIKey revoked, whichever
generation of the APIKey the key is. A key a rotation replaced whose overlap
has ended verifies nowhere: revoking its APIKey would only stop the current
key, so that takes --force.`,
		Example: `  kubectl keyward revoke acme-dashboard-2027 -n iot
  pbpaste | kubectl keyward revoke --key -`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := commandContext(cmd)
			switch {
			case keyFrom == "" && len(args) == 1:
				return o.revokeByName(ctx, args[0])
			case keyFrom == "-" && len(args) == 0:
				return o.revokeByKey(ctx, operatorNS, force)
			case keyFrom != "" && keyFrom != "-":
				return errKeyFlag
			}
			return errors.New("name one APIKey, or pass --key - and the key on stdin")
		},
	}
	cmd.Flags().StringVar(&keyFrom, "key", "", "\"-\": read a leaked key from stdin and revoke its APIKey")
	cmd.Flags().BoolVar(&force, "force", false, "with --key -: revoke the APIKey even when the key is a replaced generation that stopped working")
	addOperatorNamespaceFlag(cmd, &operatorNS)
	return cmd
}

// revokeByName revokes the APIKey name of the namespace the flags name.
func (o *options) revokeByName(ctx context.Context, name string) error {
	cl, err := o.connect()
	if err != nil {
		return err
	}
	if err := revoke(ctx, cl.client, cl.namespace, name, ""); err != nil {
		return err
	}
	fmt.Fprintf(o.streams.Out, "apikey.keyward.dev/%s revoked\n", name)
	return nil
}

// revokeByKey revokes the APIKey whose key is on stdin.
func (o *options) revokeByKey(ctx context.Context, operatorNS string, force bool) error {
	k, err := readKey(o.streams.In, o.streams.ErrOut)
	if err != nil {
		return err
	}
	c, err := o.client()
	if err != nil {
		return err
	}
	id, err := identify(ctx, c, operatorNS, k)
	if err != nil {
		return err
	}
	if !id.apiKeyFound {
		return fmt.Errorf("the key is %s's (APIKey %s/%s, key ID %s) but that APIKey %s: revoke its hashed record %s instead (SECURITY.md, break-glass)",
			id.Application, id.Namespace, id.APIKey, id.KeyID, id.gone(), id.HashedSecret)
	}
	if id.Generation == generationPrevious && id.ExpiresAt != nil && !id.ExpiresAt.After(o.now()) && !force {
		return fmt.Errorf("the key is %s's (APIKey %s/%s, key ID %s), the generation a rotation replaced, and it stopped working at %s: it verifies nowhere, and revoking the APIKey would stop only its current key; pass --force to revoke it anyway",
			id.Application, id.Namespace, id.APIKey, id.KeyID, id.ExpiresAt.UTC().Format(time.RFC3339))
	}
	if err := revoke(ctx, c, id.Namespace, id.APIKey, id.uid); err != nil {
		return err
	}
	fmt.Fprintf(o.streams.Out, "apikey.keyward.dev/%s revoked in namespace %s (key ID %s, %s generation; application %s, key group %s)\n",
		id.APIKey, id.Namespace, id.KeyID, id.Generation, id.Application, id.KeyGroup)
	return nil
}

// revoke sets spec.revoked on an APIKey with a merge patch that changes
// nothing else, which the admission webhooks let through even when they
// are down (SECURITY.md). A uid, when given, makes sure that the APIKey
// revoked is the one identified, not one created again under its name.
func revoke(ctx context.Context, c client.Client, namespace, name string, uid types.UID) error {
	patch := map[string]any{"spec": map[string]any{"revoked": true}}
	if uid != "" {
		patch["metadata"] = map[string]any{"uid": uid}
	}
	b, err := json.Marshal(patch)
	if err != nil {
		return err
	}
	key := &keywardv1alpha1.APIKey{}
	key.Namespace, key.Name = namespace, name
	acc := access{verb: verbPatch, resource: resourceAPIKeys, namespace: namespace, name: name, hint: grantedByResponderClusterRole}
	return acc.wrap(c.Patch(ctx, key, client.RawPatch(types.MergePatchType, b)))
}
