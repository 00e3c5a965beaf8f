// Package openapi embeds the merged OpenAPI (Swagger 2.0) document that
// protoc-gen-openapiv2 generates next to this file, so the gateway serves the
// document that matches the code it was built with.
package openapi

import _ "embed"

//go:embed kompetensnav.swagger.json
var Document []byte
