<?php
// Rendered by Postmeister (`postmeister dataplane install --with-webmail`): Roundcube against the Postmeister data plane; edits are lost.
$config = [];
$config['db_dsnw'] = 'sqlite:////var/lib/postmeister/webmail/roundcube.sqlite?mode=0640';
$config['imap_host'] = 'ssl://127.0.0.1:993';
$config['imap_conn_options'] = ['ssl' => ['verify_peer' => true, 'verify_peer_name' => true, 'peer_name' => 'mail.example.org']];
$config['smtp_host'] = 'ssl://127.0.0.1:465';
$config['smtp_user'] = '%u';
$config['smtp_pass'] = '%p';
$config['smtp_conn_options'] = ['ssl' => ['verify_peer' => true, 'verify_peer_name' => true, 'peer_name' => 'mail.example.org']];
$config['login_username_filter'] = 'email';
$config['identities_level'] = 3;
$config['plugins'] = ['postmeister_client_ip'];
$config['des_key'] = '0123456789abcdef0123456789abcdef';
$config['product_name'] = 'Webmail';
$config['display_product_info'] = 1;
$config['skin'] = 'elastic';
$config['use_https'] = true;
$config['ip_check'] = true;
$config['login_autocomplete'] = 0;
$config['enable_installer'] = false;
$config['enable_spellcheck'] = false;
$config['create_default_folders'] = true;
$config['support_url'] = '';
$config['log_driver'] = 'file';
$config['log_dir'] = '/var/log/roundcube';
$config['temp_dir'] = '/var/lib/roundcube/temp';
