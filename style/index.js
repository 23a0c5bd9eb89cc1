import './base.css';
import './ensemble.css';
import './panels.css';
import './attachments.css';
import './mcp.css';
import './rules.css';
