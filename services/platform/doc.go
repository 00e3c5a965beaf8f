// Package platform is the runtime every Kompetensnav service shares: server
// bootstrap (server), configuration (config), telemetry, the Redis client and
// embedded store (redisx), the atomic storage pattern and events (store),
// list pagination and filtering (listing), API errors (apierr), calls to
// other services (peer), Swedish reference data and identifiers (sweden) and
// the test harness (testkit). A service writes none of these itself.
package platform
