import './base.css';
import './ensemble.css';
import './panels.css';
