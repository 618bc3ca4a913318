<?php
// Rendered by Postmeister (`postmeister dataplane install --with-webmail`).
// Tell Dovecot the browser's address (IMAP ID x-originating-ip, before LOGIN). Dovecot
// believes it from its login_trusted_networks only, so the brute-force limits count the
// browser's address rather than the webmail host's.
class postmeister_client_ip extends rcube_plugin
{
    public function init()
    {
        $this->add_hook('storage_connect', [$this, 'storage_connect']);
    }

    public function storage_connect($args)
    {
        $args['preauth_ident'] = ['x-originating-ip' => rcube_utils::remote_addr()];
        return $args;
    }
}
