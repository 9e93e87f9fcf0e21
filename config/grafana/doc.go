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

// Package grafana holds keyward's Grafana dashboard, keyward-dashboard.json,
// and the test that every query in it names a metric the manager or the
// verifier exports, with labels that exist. The Helm chart ships a copy
// (charts/keyward/files/keyward-dashboard.json) as a ConfigMap for
// Grafana's dashboard sidecar.
package grafana

import _ "embed"

// Dashboard is keyward-dashboard.json.
//
//go:embed keyward-dashboard.json
var Dashboard []byte
