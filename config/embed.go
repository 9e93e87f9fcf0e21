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

// Package config carries the CRDs and samples inside the keyward binary, so
// "keyward dev" works wherever it runs.
package config

import "embed"

// CRDs are the generated CustomResourceDefinitions.
//
//go:embed crd/bases/*.yaml
var CRDs embed.FS

// Samples are the objects "keyward dev" applies.
//
//go:embed samples/*.yaml
var Samples embed.FS

// Webhooks are the generated admission webhook configurations.
//
//go:embed webhook/manifests.yaml
var Webhooks []byte

// UserRoles are the roles shipped for users (rbac/): keyward-admin,
// keyward-editor and keyward-viewer, aggregated to the built-in admin, edit
// and view, and keyward-responder.
//
//go:embed rbac/keyward_admin_role.yaml rbac/keyward_editor_role.yaml rbac/keyward_viewer_role.yaml rbac/responder_role.yaml
var UserRoles embed.FS
