package procurement

import "context"

// Migrate brings the store up to date before the service serves.
func (s *Service) Migrate(ctx context.Context) error { return nil }
