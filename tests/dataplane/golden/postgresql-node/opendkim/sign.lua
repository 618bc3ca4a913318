-- Rendered by `postmeister dataplane render` (data-plane contract v1).
-- Do not edit: change the settings and render again.
-- OpenDKIM SetupPolicyScript (Postmeister): sign with the key of the header From's domain.
-- The KeyTable is keyed by domain (A-label, lowercase); a domain without a key is sent
-- unsigned (On-KeyNotFound accept). Only submissions reach this milter, after the sender
-- milter has checked that the login may use this From.
local domain = odkim.get_fromdomain(ctx)
if domain ~= nil then
  odkim.sign(ctx, string.lower(domain))
end
return nil
