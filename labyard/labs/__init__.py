"""Labs: templates catalog, lab workspaces, dataset attachments, parameter forms, submission."""
