// Package model holds everything the trainer hands to the watcher: the pod-type
// classifier and the versioned model bundle that carries it together with one
// anomaly model per pod type.
//
// The classifier's trees are grown by golearn's ID3 induction (with a split rule
// of ours that makes training reproducible, see splitRule), and each trained
// tree is converted into a flat, JSON-serialisable node array right away. That
// keeps the bundle plain JSON, makes inference a few array look-ups in pure Go,
// and means the pod-watcher never builds golearn grids (whose Predict panics on
// any mismatch in the class attribute) nor needs golearn to predict.
//
// A bundle file is one gzip-compressed JSON envelope:
//
//	{"format":"podtype-model","format_version":2,"version":"20260102T150405Z-0123456789ab",
//	 "sha256":"<hex of the payload bytes>","payload":{...}}
//
// The checksum covers the exact payload bytes, so a damaged or hand-edited file
// is refused before any of it is trusted.
package model
