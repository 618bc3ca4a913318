<?php
// Rendered by Postmeister (`postmeister dataplane install --with-webmail`): Debian's defaults.
include '/etc/roundcube/defaults.inc.php';
