// Package shared is the library both podtype services import: configuration, the InfluxDB and
// Kubernetes sources, feature extraction, the isolation forest, the model bundle and evaluation.
// Sub-packages hold one concern each; nothing here imports a service.
package shared
