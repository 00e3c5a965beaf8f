// Package platform is the runtime every Kompetensnav service shares: server
// bootstrap (server), configuration (config), telemetry, the Redis client and
// embedded store (redisx), the atomic storage pattern and events (store),
// list pagination and filtering (listing), API errors (apierr), Swedish
// reference data (sweden) and the test harness (testkit). A service writes
// none of these itself.
package platform
